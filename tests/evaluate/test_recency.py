"""Recency-weighted EASE: ages by hand, scores by hand, and the decay chosen on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.evaluate.baselines import EASE
from recsys.evaluate.protocol import evaluate_baselines, evaluate_scorer, fit_recency_ease
from recsys.evaluate.recency import RECENCY_DECAY, History, RecencyEASE


def frame(users, items, ts):
    return pd.DataFrame(
        {
            S.USER_IDX: np.asarray(users, dtype=np.int32),
            S.ITEM_IDX: np.asarray(items, dtype=np.int32),
            S.RATING: np.ones(len(users), dtype=np.float32),
            S.TS: np.asarray(ts, dtype=np.int64),
        }
    )


# u0 in time order: item 1 @5, item 2 @10, item 1 @20 (again), item 0 @30.
# u1: items 3 and 1 in the same second: the higher item counts as the newer (leave-last's rule).
# u2 has no row.
HAND = frame([0, 0, 0, 0, 1, 1], [2, 0, 1, 1, 3, 1], [10, 30, 20, 5, 7, 7])


def test_ages_count_rows_back_from_the_newest_and_a_repeated_pair_keeps_its_newest():
    history = History.build(HAND, 3, 4)
    assert history.seen.indptr.tolist() == [0, 3, 5, 5]
    assert history.seen.indices.tolist() == [0, 1, 2, 1, 3]
    # u0: item 0 newest (0), item 1 at 20 one row before (1), item 2 two before; the row of
    # item 1 at 5 (age 3) is the older copy of a pair and is not used
    assert history.ages.tolist() == [0, 1, 2, 1, 0]
    rows = history.weighted_rows([1, 0, 2], 0.5)
    np.testing.assert_array_equal(
        rows, [[0, 0.5, 0, 1], [1, 0.5, 0.25, 0], [0, 0, 0, 0]]
    )  # (3 users, 4 items)


def test_scores_are_the_weighted_row_times_eases_weights_and_decay_1_is_ease():
    ease = EASE(lam=2.0).fit(HAND, 3, 4)
    b = ease.weights.astype(np.float64)
    model = RecencyEASE(ease, History.build(HAND, 3, 4), 0.5)
    want = np.array([1, 0.5, 0.25, 0]) @ b  # u0's row by hand
    np.testing.assert_allclose(model.score_block([0])[0], want, rtol=1e-6)
    plain = RecencyEASE(ease, History.build(HAND, 3, 4), 1.0)
    np.testing.assert_allclose(plain.score_block([0, 1, 2]), ease.score_block([0, 1, 2]))


def test_bad_inputs_are_refused():
    with pytest.raises(RecsysError, match=r"no column\(s\) \['ts'\]"):
        History.build(HAND.drop(columns=[S.TS]), 3, 4)
    ease = EASE(lam=2.0).fit(HAND, 3, 4)
    with pytest.raises(ValueError, match="decay must be in"):
        RecencyEASE(ease, History.build(HAND, 3, 4), 0.0)
    with pytest.raises(RuntimeError, match="fitted EASE"):
        RecencyEASE(EASE(), History.build(HAND, 3, 4), 0.9)


def drifting(seed=0, n_users=300, n_items=60):
    """Users who rated one genre (of six, ten items each) for a long time and recently switched.

    Each user: 8 train rows of an old genre, then 3 train rows, the validation row and the test
    row of a new genre, in that time order. Plain EASE mostly follows the old genre.
    """
    rng = np.random.default_rng(seed)
    parts = {"train": [], "val": [], "test": []}
    for u in range(n_users):
        old, new = rng.choice(6, 2, replace=False)
        items = np.concatenate(
            [
                10 * old + rng.choice(10, 8, replace=False),
                10 * new + rng.choice(10, 5, replace=False),
            ]
        )
        ts = 1000 * u + np.arange(items.size)
        parts["train"].append(frame([u] * 11, items[:11], ts[:11]))
        parts["val"].append(frame([u], items[11:12], ts[11:12]))
        parts["test"].append(frame([u], items[12:], ts[12:]))
    return {name: pd.concat(rows, ignore_index=True) for name, rows in parts.items()}


def test_the_decay_is_the_best_of_the_grid_on_validation_and_beats_ease_on_a_switch():
    data = drifting()
    train, val, test = data["train"], data["val"], data["test"]
    ease = EASE(lam=10.0).fit(train, 300, 60)
    grid = (0.5, 0.9, 1.0)
    model, info = fit_recency_ease(ease, train, val, 300, 60, k=5, decays=grid)
    history = History.build(train, 300, 60)
    by_hand = {
        d: evaluate_scorer(RecencyEASE(ease, history, d).score_block, train, val, 300, 60, k=5)
        for d in grid
    }
    best = max(grid, key=lambda d: by_hand[d]["ndcg@5"])
    assert info["decay"] == model.decay == best and info["decay_from"] == "validation"
    assert info["val_ndcg@5"] == pytest.approx(by_hand[best]["ndcg@5"])
    assert best < 1.0
    got = evaluate_baselines(train, test, 300, 60, k=5, val_df=val)
    assert got["recency_ease"]["ndcg@5"] > 1.5 * got["ease"]["ndcg@5"]
    assert got["recency_ease"]["lambda"] == got["ease"]["lambda"]


def test_without_validation_the_default_decay_and_without_times_a_reason():
    data = drifting(n_users=30)
    ease = EASE(lam=10.0).fit(data["train"], 30, 60)
    model, info = fit_recency_ease(ease, data["train"], None, 30, 60)
    assert model.decay == info["decay"] == RECENCY_DECAY and info["decay_from"] == "default"
    no_ts = data["train"].drop(columns=[S.TS])
    got = evaluate_baselines(no_ts, data["test"], 30, 60, k=5)
    assert got["recency_ease"] == {"skipped": "the train rows have no timestamps"}
    assert "ndcg@5" in got["ease"]
