"""The ranking objective: the loss by hand on two rows, the models' candidate scoring, and
end to end on synthetic data (beats popularity) and on an implicit log."""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from recsys import schema as S  # noqa: E402
from recsys.artifact import Scorer  # noqa: E402
from recsys.cli import main  # noqa: E402
from recsys.config import load_config  # noqa: E402
from recsys.train.models.build import model_class  # noqa: E402
from recsys.train.ranking import MASKED, RankingLoss  # noqa: E402

N_USERS, N_ITEMS = 5, 4


def tiny_mf(**kw):
    """MF with 2-d factors set by hand: user u = (u, 1) / 4, item i = (1, -i) / 2."""
    model = model_class("mf")(N_USERS, N_ITEMS, dim=2, l2=0.1, objective="ranking", **kw)
    model.build()
    users = np.stack([np.arange(N_USERS), np.ones(N_USERS)], axis=1) / 4
    items = np.stack([np.ones(N_ITEMS), -np.arange(N_ITEMS)], axis=1) / 2
    model.user_emb.assign(users.astype(np.float32))
    model.item_emb.assign(items.astype(np.float32))
    return model, users, items


def softmax_ce(logits, label):
    logits = np.asarray(logits, np.float64)
    return np.log(np.exp(logits - logits.max()).sum()) + logits.max() - logits[label]


def batch(users, items):
    return {S.USER_IDX: tf.constant(users, tf.int32), S.ITEM_IDX: tf.constant(items, tf.int32)}


def test_full_softmax_by_hand():
    model, U, V = tiny_mf()
    x = batch([1, 3], [2, 0])
    got = RankingLoss(negatives=0)(model, x, tf.constant([4.0, 1.0]), 0).numpy()
    for row, (u, i) in enumerate([(1, 2), (3, 0)]):
        logits = U[u] @ V.T
        penalty = 0.1 * (U[u] @ U[u] + V[i] @ V[i])
        assert got[row] == pytest.approx(softmax_ce(logits, i) + penalty, abs=1e-5)


def test_sampled_softmax_corrects_for_popularity_and_masks_accidental_hits():
    model, U, V = tiny_mf()
    freq = np.array([0.1, 0.2, 0.3, 0.4])
    loss = RankingLoss(negatives=0, in_batch=3, item_freq=freq)
    # Rows 0 and 2 chose the same item: each is the other's accidental hit.
    x = batch([0, 1, 4], [1, 2, 1])
    got = loss(model, x, tf.constant([1.0, 1.0, 1.0]), 0).numpy()
    cand = [1, 2, 1]
    log_q = np.log(3 * freq)  # 3 in-batch rows draw items by frequency; no uniform draws
    for row, (u, i) in enumerate([(0, 1), (1, 2), (4, 1)]):
        logits = [U[u] @ V[i] - log_q[i]]
        logits += [MASKED if c == i else U[u] @ V[c] - log_q[c] for c in cand]
        penalty = 0.1 * (U[u] @ U[u] + V[i] @ V[i])
        assert got[row] == pytest.approx(softmax_ce(logits, 0) + penalty, abs=1e-4)


def test_uniform_negatives_are_seeded_and_ratings_filter_or_weight_rows():
    model, *_ = tiny_mf()
    x = batch([0, 1, 2], [1, 2, 3])
    ratings = tf.constant([5.0, 2.0, 4.0])
    loss = RankingLoss(negatives=8, in_batch=0, seed=3)
    a, b = loss(model, x, ratings, 7).numpy(), loss(model, x, ratings, 7).numpy()
    assert np.array_equal(a, b)  # same step, same negatives
    assert not np.array_equal(a, loss(model, x, ratings, 8).numpy())
    liked = RankingLoss(negatives=8, seed=3, min_rating=4.0)(model, x, ratings, 7).numpy()
    assert liked[1] == 0 and liked[0] == pytest.approx(a[0]) and liked[2] == pytest.approx(a[2])
    weighted = RankingLoss(negatives=8, seed=3, rating_weights=True, mean_rating=2.5)
    assert np.allclose(weighted(model, x, ratings, 7).numpy(), a * [2.0, 0.8, 1.6], atol=1e-5)


def test_bpr_by_hand():
    model, U, V = tiny_mf()
    x = batch([2], [0])
    got = RankingLoss(loss="bpr", seed=1)(model, x, tf.constant([1.0]), 5).numpy()[0]
    penalty = 0.1 * (U[2] @ U[2] + V[0] @ V[0])
    # The sampled negative is one of the 4 items: the loss is one of these values.
    options = [np.log1p(np.exp(-(U[2] @ V[0] - U[2] @ V[j]))) + penalty for j in range(4)]
    assert min(abs(got - o) for o in options) < 1e-5


CASES = [("mf", {}), ("biased-mf", {}), ("ncf", {"hidden": (16, 8)}), ("neumf", {"hidden": (8,)})]


@pytest.mark.parametrize(("family", "kw"), CASES)
def test_cross_scores_equal_the_numpy_kernel(family, kw):
    """``cross`` (what the softmax trains) ranks exactly what the scoring kernel serves."""
    rng = np.random.default_rng(1)
    feats = rng.integers(0, 2, (N_ITEMS, 3)).astype(np.float32)
    model = model_class(family)(
        N_USERS, N_ITEMS, dim=4, item_features=feats, objective="ranking", **kw
    )
    model.build()
    for w in model.trainable_weights:
        w.assign(rng.normal(0, 0.5, w.shape).astype(np.float32))
    scorer = Scorer(model.export_arrays())
    users = np.arange(N_USERS, dtype=np.int32)
    full = model.cross(tf.constant(users), None).numpy()
    assert np.abs(full - scorer.rank_scores(users)).max() < 1e-4
    some = np.array([3, 0], np.int32)
    part = model.cross(tf.constant(users), tf.constant(some)).numpy()
    assert np.abs(part - full[:, some]).max() < 1e-5
    # A ranking model's prediction is its logit: Keras predict = kernel scores, no sigmoid.
    pairs = np.meshgrid(users, np.arange(N_ITEMS, dtype=np.int32), indexing="ij")
    x = {S.USER_IDX: pairs[0].ravel(), S.ITEM_IDX: pairs[1].ravel()}
    keras_pred = model.predict(x, verbose=0)[:, 0].reshape(N_USERS, N_ITEMS)
    assert np.abs(keras_pred - scorer.score_block(users)).max() < 1e-4


@pytest.fixture(scope="module")
def synthetic_root(spark, tmp_path_factory, synthetic_run):
    """400 users x 300 items of planted-preference data, 25% of each item's rows held out."""
    base = tmp_path_factory.mktemp("ranking")
    stratified = {"split": "stratified", "test_fraction": 0.25, "val_fraction": 0.1}
    return synthetic_run(base, (400, 300, 48_000), 4, "2026-02-01", **stratified)


@pytest.mark.parametrize(("negatives", "in_batch"), [(0, 0), (64, 64)])
def test_ranking_model_beats_popularity_on_synthetic_data(synthetic_root, negatives, in_batch):
    """The defaults (full or sampled softmax) beat the popularity list by 10% on NDCG@10.

    Measured with these defaults: 0.429 (full) and 0.432 (sampled) against 0.379 for popularity
    and 0.194 for the rating baseline; the planted model itself reaches 0.63.
    """
    from recsys.train.step import run_train

    cfg = load_config(
        root=synthetic_root,
        train={"eval_max_users": 0, "negatives": negatives, "in_batch_negatives": in_batch},
    )
    result = run_train(cfg, "2026-02-02")
    m = result.manifest
    assert m.objective == "ranking" and m.train.l2 is not None
    assert m.training.ranking_loss["negatives"] == negatives
    test, base = m.metrics.test, m.metrics.baselines
    assert "rmse" not in test  # a ranking model's score is not a rating
    popular, rating = base["most_popular"], base["biased_baseline"]
    assert test["ndcg@10"] > 1.1 * popular["ndcg@10"], (test, popular)
    assert test["recall@10"] > popular["recall@10"] and test["map@10"] > popular["map@10"]
    assert test["ndcg@10"] > 2 * rating["ndcg@10"]
    history = json.loads((result.path / "history.json").read_text())
    assert len(history["val_ndcg@10"]) == m.training.epochs_run
    assert "best validation NDCG@10" in (result.path / "report.md").read_text()


@pytest.fixture(scope="module")
def implicit_root(spark, tmp_path_factory, click_run):
    """A click log with string ids and no rating column, leave-last split."""
    base = tmp_path_factory.mktemp("implicit")
    rng = np.random.default_rng(0)
    lines = ["member,sku,when"]
    for k in range(3000):
        u = int(rng.integers(0, 80))
        i = int(rng.zipf(1.5) % 120) if rng.random() < 0.5 else (u * 7 + int(rng.integers(5))) % 120
        lines.append(f"m{u},sku-{i},{1_600_000_000 + k}")
    return click_run(base, lines)


def test_implicit_log_trains_directly(implicit_root, capsys):
    code = main(["train", "--root", implicit_root, "--set", "train.epochs=3", "--ds", "2026-02-04"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ndcg@10" in out and "rmse" not in out


def test_implicit_log_with_rating_objective_is_one_sentence(implicit_root, capsys):
    assert main(["train", "--root", implicit_root, "--objective", "rating"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "holds implicit events (no rating column)" in err and "--objective rating" in err


def test_min_rating_that_leaves_no_positive_is_one_sentence(synthetic_root, capsys):
    code = main(["train", "--root", synthetic_root, "--set", "train.min_rating=6"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recsys train: error: train.min_rating=6 leaves no train row")
    assert "highest rating: 5" in err and err.count("\n") == 0


@pytest.mark.parametrize(("xla", "group"), [(False, 1), (True, 1), (False, 2), (True, 4)])
def test_factored_softmax_equals_the_generic_one_with_gradients(xla, group):
    """The candidate matmul outside XLA, once per user run (``_factored``), is the same loss as
    ``model.cross`` for every row, accidental hits (item 1 thrice, item 7 twice) included."""
    rng = np.random.default_rng(3)
    genres = rng.uniform(size=(N_ITEMS * 5, 3)).astype(np.float32)
    model = model_class("biased-mf")(
        N_USERS, N_ITEMS * 5, dim=4, objective="ranking", item_features=genres, init_scale=0.5
    )
    model.build()
    model.item_bias.assign(rng.normal(size=(N_ITEMS * 5, 1)).astype(np.float32))
    model.xla = xla
    freq = rng.uniform(size=N_ITEMS * 5)
    loss = RankingLoss(negatives=6, in_batch=3, item_freq=freq / freq.sum(), seed=1, group=group)
    # Runs of `group` rows share a user, as the grouped input lays them out.
    users = np.repeat([0, 1, 4, 2, 3, 0, 1, 2], group)[:8]
    x = batch(users, [1, 7, 1, 19, 7, 1, 3, 11])
    rating = tf.ones(8)
    step = tf.constant(5, tf.int64)

    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            out = fn()
            total = tf.reduce_sum(out)
        grads = tape.gradient(total, model.trainable_variables)
        names = [v.name for v in model.trainable_variables]
        assert all(g is not None for g in grads), names
        return out.numpy(), {
            n: tf.convert_to_tensor(g).numpy() for n, g in zip(names, grads, strict=True)
        }

    want, want_grads = value_and_grads(lambda: loss._per_row(model, x, step))
    got, got_grads = value_and_grads(lambda: loss(model, x, rating, step))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert set(got_grads) == set(want_grads) == {"user_emb", "item_emb", "item_bias", "side_emb"}
    for name, grad in got_grads.items():
        np.testing.assert_allclose(grad, want_grads[name], rtol=1e-4, atol=1e-6, err_msg=name)
        assert np.abs(grad).sum() > 0, name


def test_padding_rows_of_user_runs_weigh_nothing():
    """A run shorter than the group is padded with NaN-rated rows: they add no loss and no
    gradient, and the real rows keep the loss they have without the padding."""
    model, *_ = tiny_mf()
    loss = RankingLoss(negatives=0, in_batch=2, group=2, item_freq=np.full(N_ITEMS, 0.25))
    x = batch([1, 1, 3, 3], [2, 0, 1, 1])
    with tf.GradientTape() as tape:
        padded = loss(model, x, tf.constant([4.0, 1.0, 5.0, np.nan]), 0)
        total = tf.reduce_sum(padded)
    grads = tape.gradient(total, model.trainable_variables)
    with tf.GradientTape() as tape:
        real = loss(model, x, tf.constant([4.0, 1.0, 5.0, 5.0]), 0)
        real = real * tf.constant([1.0, 1.0, 1.0, 0.0])
        total = tf.reduce_sum(real)
    want = tape.gradient(total, model.trainable_variables)
    np.testing.assert_allclose(padded.numpy(), real.numpy(), atol=1e-7)
    assert padded.numpy()[3] == 0 and np.all(np.isfinite(padded.numpy()))
    names = [v.name for v in model.trainable_variables]
    assert [g is None for g in grads] == [w is None for w in want] == [False, False], names
    for g, w in zip(grads, want, strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(g), tf.convert_to_tensor(w), atol=1e-7)
