"""The protocol end to end: a hand-checked tiny split, and planted structure it must detect."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.evaluate.baselines import EASE, EASE_LAMBDA
from recsys.evaluate.protocol import RankingTask, evaluate_baselines, evaluate_scorer, fit_ease

L3 = math.log2(3)


def frame(users, items, ratings):
    return pd.DataFrame(
        {
            S.USER_IDX: np.asarray(users, dtype=np.int32),
            S.ITEM_IDX: np.asarray(items, dtype=np.int32),
            S.RATING: np.asarray(ratings, dtype=np.float32),
        }
    )


# 4 users x 5 items. Train: u0 {0, 1}, u1 {2}, u2 {0}. Test: u0 {3}, u1 {0, 4}.
# u2 has no test item and u3 no rating at all: neither is scored, u3 is no train user.
TRAIN = frame([0, 0, 1, 2], [0, 1, 2, 0], [4.0, 2.0, 3.0, 5.0])
TEST = frame([0, 1, 1], [3, 0, 4], [4.0, 2.0, 5.0])
# Item popularity in train: [2, 1, 1, 0, 0] over 3 train users.
HAND = {
    # lists (seen items skipped; items 3 and 4 tie for MostPopular, the lower id wins):
    #   u0 [2, 3] -> hit at rank 2 of {3};  u1 [0, 1] -> hit at rank 1 of {0, 4}
    "precision@2": (1 / 2 + 1 / 2) / 2,
    "recall@2": (1 / 1 + 1 / 2) / 2,
    # u0: (1/log2(3)) / (1/log2(2));  u1: (1/log2(2)) / (1/log2(2) + 1/log2(3))
    "ndcg@2": (1 / L3 + 1 / (1 + 1 / L3)) / 2,
    # u0: (1/2) / min(1, 2);  u1: (1/1) / min(2, 2)
    "map@2": (1 / 2 + 1 / 2) / 2,
    "hit_rate@2": 1.0,
    "mrr@2": (1 / 2 + 1) / 2,
    # items {2, 3, 0, 1} of 5
    "coverage@2": 4 / 5,
    # popularity of the slots 2, 3, 0, 1 -> 1, 0 (clipped to 1), 2, 1 of 3 users
    "novelty@2": (3 * L3 + math.log2(3 / 2)) / 4,
    "n_eval_users": 2,
}


def test_evaluate_scorer_by_hand():
    item_scores = np.array([5.0, 4.0, 3.0, 2.0, 1.0], dtype=np.float32)

    def score_block(users):
        return np.tile(item_scores, (len(users), 1))  # (b, n_items)

    def predict(users, items):
        return np.full(len(users), 3.0)

    got = evaluate_scorer(score_block, TRAIN, TEST, 4, 5, k=2, predict_fn=predict)
    # test ratings 4, 2, 5 against 3: errors -1, 1, -2 -> rmse sqrt(6/3), mae 4/3
    assert got.pop("rmse") == pytest.approx(math.sqrt(2))
    assert got.pop("mae") == pytest.approx(4 / 3)
    assert got == pytest.approx(HAND, abs=1e-12)
    assert "rmse" not in evaluate_scorer(score_block, TRAIN, TEST, 4, 5, k=2)


def test_evaluate_baselines_by_hand():
    got = evaluate_baselines(TRAIN, TEST, 4, 5, k=2)
    assert set(got) == {"global_mean", "biased_baseline", "most_popular", "ease", "recency_ease"}
    assert got["recency_ease"] == {"skipped": "the train rows have no timestamps"}
    # train mean (4 + 2 + 3 + 5) / 4 = 3.5; test errors 0.5, -1.5, 1.5
    assert got["global_mean"]["rmse"] == pytest.approx(math.sqrt((0.25 + 2.25 + 2.25) / 3))
    assert got["global_mean"]["mae"] == pytest.approx(3.5 / 3)
    assert {"rmse", "mae", "ndcg@2"} <= set(got["biased_baseline"])
    # train counts [2, 1, 1, 0, 0] rank like the scores of the test above
    assert got["most_popular"] == pytest.approx(HAND, abs=1e-12)


def planted(seed=0, n_users=300, n_items=80, per_user=25):
    """Ratings mu + user bias + item bias + noise; item popularity follows item quality."""
    rng = np.random.default_rng(seed)
    b_u = rng.normal(0, 0.5, n_users)
    b_i = np.sort(rng.normal(0, 0.7, n_items))[::-1]  # item 0 the best
    weights = np.exp(-np.arange(n_items) / 15.0)  # and the most often rated
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, per_user, replace=False, p=weights / weights.sum())
        r = np.clip(3.5 + b_u[u] + b_i[items] + rng.normal(0, 0.3, per_user), 0.5, 5.0)
        rows.append(frame(np.full(per_user, u), items, r))
    ratings = pd.concat(rows, ignore_index=True)
    is_test = rng.random(len(ratings)) < 0.2
    return ratings[~is_test], ratings[is_test], n_users, n_items


def test_baselines_detect_planted_structure():
    train, test, n_users, n_items = planted()
    got = evaluate_baselines(train, test, n_users, n_items, k=10)
    # the biases explain most of the variance the global mean leaves
    assert got["biased_baseline"]["rmse"] < 0.7 * got["global_mean"]["rmse"]
    # popularity beats a random ranking of the same candidates
    rng = np.random.default_rng(1)
    random = evaluate_scorer(
        lambda users: rng.random((len(users), n_items)), train, test, n_users, n_items, k=10
    )
    assert got["most_popular"]["ndcg@10"] > 1.5 * random["ndcg@10"]
    assert got["most_popular"]["coverage@10"] < random["coverage@10"]
    assert got["most_popular"]["novelty@10"] < random["novelty@10"]


def test_empty_test_and_missing_columns_are_user_errors():
    with pytest.raises(RecsysError, match="test ratings are empty"):
        evaluate_scorer(lambda u: np.zeros((len(u), 5)), TRAIN, TEST.iloc[:0], 3, 5)
    with pytest.raises(RecsysError, match=r"no column\(s\) \['user_idx'\]"):
        evaluate_baselines(TRAIN, TEST.rename(columns={S.USER_IDX: "uid"}), 3, 5)


def cooccurring(seed=0, n_users=200, n_items=30):
    """Users who like one of three item groups: an item predicts the others of its group.

    Returns train, validation and test frames (70/15/15 of the distinct pairs, at random).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        own = np.flatnonzero(np.arange(n_items) % 3 == rng.integers(0, 3))
        items = np.unique(
            np.concatenate([rng.choice(own, 6, replace=False), rng.choice(n_items, 2)])
        )
        rows.append(frame(np.full(items.size, u), items, np.ones(items.size)))
    ratings = pd.concat(rows, ignore_index=True)
    part = rng.random(len(ratings))
    return ratings[part >= 0.3], ratings[(part >= 0.15) & (part < 0.3)], ratings[part < 0.15]


def test_ease_baseline_is_reported_next_to_popularity_and_beats_it_on_cooccurrence():
    train, val, test = cooccurring()
    got = evaluate_baselines(train, test, 200, 30, k=5, val_df=val)
    ease = got["ease"]
    assert ease["lambda_from"] == "validation" and ease["lambda"] > 0
    assert {"ndcg@5", "coverage@5", "n_eval_users", "val_ndcg@5", "fit_seconds"} <= set(ease)
    assert ease["ndcg@5"] > 1.2 * got["most_popular"]["ndcg@5"]


def test_ease_lambda_is_the_best_of_the_grid_on_validation():
    train, val, test = cooccurring(seed=1)
    grid = (0.5, 5.0, 50.0, 500.0)
    _, info = fit_ease(train, val, 200, 30, k=5, lambdas=grid)
    by_hand = {
        lam: evaluate_scorer(EASE(lam).fit(train, 200, 30).score_block, train, val, 200, 30, k=5)
        for lam in grid
    }
    best = max(grid, key=lambda lam: by_hand[lam]["ndcg@5"])
    assert info["lambda"] == best and info["lambda_from"] == "validation"
    assert info["val_ndcg@5"] == pytest.approx(by_hand[best]["ndcg@5"])
    # the test split plays no part: the same choice whatever it holds
    assert (
        evaluate_baselines(train, test, 200, 30, k=5, val_df=val)["ease"]["lambda"]
        == (fit_ease(train, val, 200, 30, k=5)[1]["lambda"])
    )


def test_ease_without_validation_uses_the_documented_default():
    model, info = fit_ease(TRAIN, None, 4, 5, k=2)
    assert info["lambda"] == EASE_LAMBDA == model.lam and info["lambda_from"] == "default"


def test_ease_is_skipped_above_its_catalogue_limit_with_a_log_line(caplog):
    with caplog.at_level("INFO", logger="recsys.evaluate.protocol"):
        got = evaluate_baselines(TRAIN, TEST, 4, 5, k=2, ease_max_items=4)
    assert got["ease"] == {"skipped": "5 items is above the EASE limit of 4"}
    assert "EASE baseline skipped: 5 items is above the EASE limit of 4" in caplog.text
    assert "ndcg@2" in got["most_popular"]  # the other baselines are still there


def integer_biased_mf(n_users, n_items, dim=4, seed=0):
    """A biased-MF scorer whose every score is a small integer: both kernels compute it exactly,
    so they must agree list for list, ties (many) included."""
    from recsys.artifact import Scorer

    rng = np.random.default_rng(seed)
    ints = lambda *shape: rng.integers(-2, 3, size=shape).astype(np.float32)  # noqa: E731
    return Scorer(
        {
            "family": np.array("biased-mf"),
            "objective": np.array("ranking"),
            "user_factors": ints(n_users, dim),
            "item_factors": ints(n_items, dim),
            "user_bias": ints(n_users),
            "item_bias": ints(n_items),
            "rating_min": np.float32(1),
            "rating_max": np.float32(5),
            "global_mean": np.float32(3),
            "offset": np.float32(1),
            "sigmoid": np.bool_(False),
        }
    )


def test_the_fused_factor_kernel_gives_the_dense_kernels_lists_and_metrics():
    train, test, n_users, n_items = planted(seed=3)
    scorer = integer_biased_mf(n_users, n_items)
    task = RankingTask.build(train, test, n_users, n_items)

    def no_dense_block(users):
        raise AssertionError("a factor model's lists are picked without the dense block")

    fused = task.recommend(no_dense_block, 10, factors_fn=scorer.order_factors)
    dense = task.recommend(scorer.rank_scores, 10)
    np.testing.assert_array_equal(fused, dense)
    assert (fused >= 0).all()  # every list full: 80 items, 20 seen at most
    # The ranked users never get back what they rated in train.
    assert not task.seen.contains(np.arange(len(task.users))[:, None], fused).any()
    assert evaluate_scorer(
        scorer.rank_scores, train, test, n_users, n_items, factors_fn=scorer.order_factors
    ) == evaluate_scorer(scorer.rank_scores, train, test, n_users, n_items)


def test_a_model_without_factors_is_ranked_by_its_dense_scores():
    train, test, n_users, n_items = planted(seed=4)
    scorer = integer_biased_mf(n_users, n_items)
    task = RankingTask.build(train, test, n_users, n_items)
    np.testing.assert_array_equal(
        task.recommend(scorer.rank_scores, 5, factors_fn=lambda users: None),
        task.recommend(scorer.rank_scores, 5),
    )
