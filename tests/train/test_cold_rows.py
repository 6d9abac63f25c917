"""Users and items without a training row: a rating model predicts from its average row."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from recsys import schema as S
from recsys.artifact import Scorer
from recsys.config import load_config
from recsys.evaluate.baselines import BiasedBaseline
from recsys.evaluate.rating import mae
from recsys.splits import load_split

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def temporal(spark, tmp_path_factory, synthetic_run):
    """A synthetic log split at one global time cutoff (80/20): many test users are cold."""
    from recsys.train.step import run_train

    root = synthetic_run(
        tmp_path_factory.mktemp("cold"),
        (300, 200, 12_000),
        3,
        "2026-02-01",
        split="temporal",
        test_fraction=0.2,
    )
    cfg = load_config(root=root, train={"objective": "rating", "epochs": 15, "eval_max_users": 0})
    result = run_train(cfg, "2026-02-02")
    prepared = result.manifest.prepared.folder
    return result, load_split(prepared, "train"), load_split(prepared, "test")


def test_cold_users_get_the_mean_trained_row(temporal):
    result, train, test = temporal
    arrays = np.load(result.path / "arrays.npz")
    n_users = result.manifest.dims.users
    seen = np.bincount(train[S.USER_IDX], minlength=n_users) > 0
    cold = np.flatnonzero(~seen)
    assert cold.size and result.manifest.training.cold_rows["users"] == cold.size
    for name in ("user_factors", "user_bias"):
        want = arrays[name][seen].mean(axis=0)
        np.testing.assert_allclose(
            arrays[name][cold], np.broadcast_to(want, arrays[name][cold].shape), atol=1e-6
        )
    # the saved Keras model holds the same rows: both paths predict the same for cold users
    loaded = keras.saving.load_model(result.path / "model.keras", safe_mode=True)
    users = np.repeat(cold[:3], 4).astype(np.int32)
    items = np.tile(np.arange(4), 3).astype(np.int32)
    keras_pred = loaded.predict({S.USER_IDX: users, S.ITEM_IDX: items}, verbose=0)[:, 0]
    np.testing.assert_allclose(keras_pred, Scorer(dict(arrays)).predict(users, items), atol=1e-4)


def test_cold_user_mae_is_no_worse_than_the_biased_baseline(temporal):
    result, train, test = temporal
    n_users, n_items = result.manifest.dims.users, result.manifest.dims.items
    cold = ~test[S.USER_IDX].isin(train[S.USER_IDX].unique()).to_numpy()
    assert cold.mean() > 0.3  # the split has a real cold-user population
    u, i, r = (test[c].to_numpy()[cold] for c in (S.USER_IDX, S.ITEM_IDX, S.RATING))
    model = Scorer.load(result.path / "arrays.npz").predict(u, i)
    biased = BiasedBaseline().fit(train, n_users, n_items).predict(u, i)
    assert mae(r, model) <= mae(r, biased)


def test_fill_cold_rows_by_hand_for_users_and_items():
    from recsys.train.models.biased_mf import BiasedMF
    from recsys.train.models.cold import fill_cold_rows

    genres = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], np.float32)
    model = BiasedMF(3, 3, dim=2, objective="rating", item_features=genres)
    model.build()
    model.user_emb.assign([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]])
    model.user_bias.assign([[0.5], [1.5], [7.0]])
    model.item_emb.assign([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    model.item_bias.assign([[0.2], [0.4], [3.0]])
    # trained rows: users 0 and 1 (user 1 twice), items 0 and 1 (item 0 twice): a trained row
    # counts once in each table's mean, except the item bias, averaged over the training rows
    got = fill_cold_rows(model, np.array([0, 1, 1]), np.array([0, 0, 1]))
    assert got == {"users": 1, "items": 1}
    np.testing.assert_allclose(np.array(model.user_emb)[2], [2.0, 3.0])
    np.testing.assert_allclose(np.array(model.user_bias)[2], [1.0])  # not (0.5 + 2 * 1.5) / 3
    np.testing.assert_allclose(np.array(model.item_emb)[2], [0.5, 0.5])
    np.testing.assert_allclose(np.array(model.item_bias)[2], [(2 * 0.2 + 0.4) / 3], rtol=1e-6)
    np.testing.assert_allclose(np.array(model.item_bias)[:2, 0], [0.2, 0.4])
    np.testing.assert_allclose(np.array(model.user_emb)[:2], [[1.0, 2.0], [3.0, 4.0]])
    # genres are data, not a learned row: the cold item keeps its own
    np.testing.assert_allclose(np.array(model.side[0]), genres)
