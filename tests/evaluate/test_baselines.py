"""Baselines on tiny frames with hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.evaluate.baselines import EASE, BiasedBaseline, GlobalMean, MostPopular
from recsys.evaluate.ranking import seen_matrix, top_k


def frame(users, items, ratings):
    return pd.DataFrame(
        {
            S.USER_IDX: np.asarray(users, dtype=np.int32),
            S.ITEM_IDX: np.asarray(items, dtype=np.int32),
            S.RATING: np.asarray(ratings, dtype=np.float32),
        }
    )


def test_global_mean():
    model = GlobalMean().fit(frame([0, 0, 1, 2], [0, 1, 0, 2], [1.0, 2.0, 3.0, 5.0]))
    # (1 + 2 + 3 + 5) / 4
    assert model.mu == pytest.approx(2.75)
    np.testing.assert_array_equal(model.predict([0, 5], [1, 9]), [2.75, 2.75])


def test_biased_baseline_recovers_additive_structure_without_regularisation():
    a = np.array([-1.0, 0.0, 1.0])  # user effects, sum 0
    c = np.array([0.5, -0.5, 1.0, -1.0])  # item effects, sum 0
    r = 3.0 + a[:, None] + c[None, :]  # (3, 4): every user rated every item
    users, items = np.indices(r.shape)
    train = frame(users.ravel(), items.ravel(), r.ravel())
    model = BiasedBaseline(reg_item=0.0, reg_user=0.0).fit(train, n_users=3, n_items=4)
    assert model.mu == pytest.approx(3.0, abs=1e-12)
    np.testing.assert_allclose(model.user_bias, a, atol=1e-12)
    np.testing.assert_allclose(model.item_bias, c, atol=1e-12)
    np.testing.assert_allclose(model.predict(users.ravel(), items.ravel()), r.ravel(), atol=1e-12)
    np.testing.assert_allclose(model.score_block(np.array([2, 0])), r[[2, 0]], atol=1e-6)


def test_biased_baseline_single_pass_matches_koren_by_hand():
    # mu = (5 + 3 + 4) / 3 = 4; residuals: (u0,i0) +1, (u0,i1) -1, (u1,i0) 0
    train = frame([0, 0, 1], [0, 1, 0], [5.0, 3.0, 4.0])
    model = BiasedBaseline(reg_item=1.0, reg_user=2.0, n_iter=1).fit(train, 3, 3)
    # b_i0 = (1 + 0) / (1 + 2) = 1/3; b_i1 = -1 / (1 + 1) = -1/2; item 2 unrated: 0
    np.testing.assert_allclose(model.item_bias, [1 / 3, -1 / 2, 0.0], atol=1e-15)
    # b_u0 = ((1 - 1/3) + (-1 + 1/2)) / (2 + 2) = 1/24; b_u1 = (0 - 1/3) / (2 + 1) = -1/9
    np.testing.assert_allclose(model.user_bias, [1 / 24, -1 / 9, 0.0], atol=1e-15)
    # (u1, i1) = 4 - 1/9 - 1/2; unseen user 2 and item 2 get the global mean
    np.testing.assert_allclose(model.predict([1, 2], [1, 2]), [4 - 1 / 9 - 1 / 2, 4.0])


def test_biased_baseline_rounds_converge_to_the_joint_ridge_optimum():
    rng = np.random.default_rng(0)
    u = rng.integers(0, 30, 400)
    i = rng.integers(0, 20, 400)
    r = rng.integers(1, 6, 400).astype(float)
    model = BiasedBaseline(reg_item=5.0, reg_user=3.0, n_iter=200).fit(frame(u, i, r), 30, 20)
    resid = r - model.mu - model.user_bias[u] - model.item_bias[i]
    # Stationarity of sum (resid^2) + reg_i |b_i|^2 + reg_u |b_u|^2 in both blocks at once.
    grad_i = np.bincount(i, resid, minlength=20) - 5.0 * model.item_bias
    grad_u = np.bincount(u, resid, minlength=30) - 3.0 * model.user_bias
    np.testing.assert_allclose(grad_i, 0.0, atol=1e-9)
    np.testing.assert_allclose(grad_u, 0.0, atol=1e-9)
    single = BiasedBaseline(reg_item=5.0, reg_user=3.0, n_iter=1).fit(frame(u, i, r), 30, 20)
    assert not np.allclose(single.item_bias, model.item_bias, atol=1e-6)


def test_most_popular_counts_and_ranks_unseen_items():
    train = frame([0, 1, 2, 2, 1], [2, 2, 0, 2, 0], [1.0] * 5)
    model = MostPopular().fit(train, n_users=4, n_items=4)
    # item 2 three times, item 0 twice, items 1 and 3 never
    assert model.counts.tolist() == [2, 0, 3, 0]
    block = model.score_block(np.array([3, 0]))
    assert block.shape == (2, 4)
    seen = seen_matrix(train[S.USER_IDX], train[S.ITEM_IDX], 4, 4)
    got = top_k(model.score_block, 4, 4, k=3, exclude=seen)
    # user 0 has seen 2: 0 (2), then 1 and 3 tie at 0 -> lower id first
    assert got[0].tolist() == [0, 1, 3]
    assert got[2].tolist() == [1, 3, -1]  # user 2 has seen 0 and 2
    assert got[3].tolist() == [2, 0, 1]  # a user with no train rows gets the plain ranking


def test_bad_frames_are_user_errors():
    with pytest.raises(RecsysError, match="no column 'rating'"):
        GlobalMean().fit(pd.DataFrame({"stars": [1.0]}))
    with pytest.raises(RecsysError, match="empty"):
        MostPopular().fit(frame([], [], []), 1, 1)
    with pytest.raises(ValueError, match="outside"):
        BiasedBaseline().fit(frame([0], [3], [1.0]), n_users=1, n_items=3)
    with pytest.raises(RuntimeError, match="before fit"):
        BiasedBaseline().predict([0], [0])


# EASE on 3 users x 4 items: u0 {0, 1}, u1 {1, 2}, u2 {0, 1, 2}; item 3 is never rated.
EASE_TRAIN = frame([0, 0, 1, 1, 2, 2, 2], [0, 1, 1, 2, 0, 1, 2], [1.0] * 7)


def test_ease_weights_and_scores_by_hand():
    # X^T X + 1 I on items 0..2 = [[3, 2, 1], [2, 4, 2], [1, 2, 3]] (det 16), item 3: [[1]].
    # P = [[8, -4, 0], [-4, 8, -4], [0, -4, 8]] / 16, P_33 = 1; B_ij = -P_ij / P_jj, diag 0:
    model = EASE(lam=1.0).fit(EASE_TRAIN, n_users=3, n_items=4)
    want = np.array(
        [[0.0, 0.5, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0], [0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    )
    np.testing.assert_allclose(model.weights, want, atol=1e-7)
    # u0 = rows 0 + 1, u2 = rows 0 + 1 + 2; the unrated item 3 scores 0
    np.testing.assert_allclose(
        model.score_block(np.array([0, 2])), [[0.5, 0.5, 0.5, 0.0], [0.5, 1.0, 0.5, 0.0]]
    )
    # its top-1 unseen item for u0 is item 2 (0.5 over the unrated item 3's 0)
    seen = seen_matrix(EASE_TRAIN[S.USER_IDX], EASE_TRAIN[S.ITEM_IDX], 3, 4)
    assert top_k(model.score_block, 3, 4, 1, seen)[0, 0] == 2


def test_ease_is_the_constrained_ridge_regression_of_each_item_on_the_others():
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 40, 300), rng.integers(0, 12, 300)
    train = frame(u, i, np.ones(300))
    model = EASE(lam=3.0).fit(train, 40, 12)
    x = np.zeros((40, 12))
    x[u, i] = 1.0  # binary: a repeated pair counts once
    for j in range(12):
        rest = np.delete(np.arange(12), j)
        # column j without its diagonal: ridge of x[:, j] on the other columns
        a = x[:, rest]
        want = np.linalg.solve(a.T @ a + 3.0 * np.eye(11), a.T @ x[:, j])
        np.testing.assert_allclose(model.weights[rest, j], want, rtol=1e-4, atol=1e-6)
        assert model.weights[j, j] == 0.0


def test_ease_rejects_bad_input():
    with pytest.raises(ValueError, match="lam > 0"):
        EASE(lam=0.0)
    with pytest.raises(RuntimeError, match="before fit"):
        EASE().score_block(np.array([0]))
    with pytest.raises(RecsysError, match="no column 'item_idx'"):
        EASE().fit(EASE_TRAIN.drop(columns=[S.ITEM_IDX]), 3, 4)
