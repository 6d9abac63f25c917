"""Each numpy kernel matches Keras `predict` (< 1e-4) on random weights, and ranks like it."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from recsys import schema as S  # noqa: E402
from recsys.artifact import Scorer  # noqa: E402
from recsys.train.models.build import model_class  # noqa: E402

N_USERS, N_ITEMS = 13, 29


def random_model(family: str, genres: bool, **kw):
    rng = np.random.default_rng(0)
    feats = rng.integers(0, 2, (N_ITEMS, 5)).astype(np.float32) if genres else None
    model = model_class(family)(
        N_USERS,
        N_ITEMS,
        dim=8,
        item_features=feats,
        rating_min=0.5,
        rating_max=5.0,
        global_mean=3.2,
        init_scale=0.5,
        seed=3,
        **kw,
    )
    model.build()
    # Non-zero biases, so the bias terms are checked too.
    for w in model.trainable_weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype(np.float32))
    return model


CASES = [
    ("mf", {}),
    ("biased-mf", {}),
    ("biased-mf", {"sigmoid": True}),
    ("ncf", {"hidden": (16, 8)}),
    ("neumf", {"hidden": (16, 8, 4)}),
]


@pytest.mark.parametrize("genres", [False, True])
@pytest.mark.parametrize(("family", "kw"), CASES)
def test_kernel_matches_keras_predict(family, kw, genres):
    model = random_model(family, genres, **kw)
    users, items = np.meshgrid(np.arange(N_USERS), np.arange(N_ITEMS), indexing="ij")
    x = {S.USER_IDX: users.ravel().astype(np.int32), S.ITEM_IDX: items.ravel().astype(np.int32)}
    keras_pred = model.predict(x, batch_size=128, verbose=0)[:, 0].reshape(N_USERS, N_ITEMS)
    scorer = Scorer(model.export_arrays())
    block = scorer.score_block(np.arange(N_USERS))
    assert np.abs(block - keras_pred).max() < 1e-4
    pairs = scorer.predict(x[S.USER_IDX], x[S.ITEM_IDX]).reshape(N_USERS, N_ITEMS)
    assert np.abs(pairs - keras_pred).max() < 1e-4
    # Ranking on the raw logit orders items exactly as the predicted rating does.
    rank = scorer.rank_scores(np.arange(N_USERS))
    assert (
        np.argsort(-rank, axis=1, kind="stable")[:, :5]
        == np.argsort(-keras_pred, axis=1, kind="stable")[:, :5]
    ).mean() > 0.95


def test_kernel_scores_a_subset_of_items():
    model = random_model("neumf", True, hidden=(8,))
    scorer = Scorer(model.export_arrays())
    items = np.array([3, 7, 28])
    full = scorer.score_block(np.arange(4))
    assert np.allclose(scorer.score_block(np.arange(4), items), full[:, items], atol=1e-5)


def test_export_roundtrip(tmp_path):
    model = random_model("biased-mf", False, sigmoid=True)
    np.savez(tmp_path / "arrays.npz", **model.export_arrays())
    scorer = Scorer.load(tmp_path / "arrays.npz")
    assert scorer.family == "biased-mf" and scorer.n_items == N_ITEMS
