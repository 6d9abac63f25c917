"""Interactions, top-k selection and ranking metrics: by hand, brute force, and against Spark."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.errors import RecsysError
from recsys.evaluate.ranking import Interactions, ranking_metrics, seen_matrix, top_k

L3 = math.log2(3)  # 1 / L3 is the gain of rank 2


# --- seen_matrix -------------------------------------------------------------------------------


def test_seen_matrix_groups_sorts_and_dedupes():
    m = seen_matrix([2, 0, 2, 0, 2], [4, 1, 0, 1, 3], n_users=4, n_items=5)
    assert m.indptr.tolist() == [0, 1, 1, 4, 4]  # user 0: {1} (twice), 1: {}, 2: {0,3,4}, 3: {}
    assert m.indices.tolist() == [1, 0, 3, 4]
    assert m.indices.dtype == np.int32
    assert m.counts().tolist() == [1, 0, 3, 0]
    assert m.row(2).tolist() == [0, 3, 4]
    assert (m.n_users, m.n_items) == (4, 5)


def test_contains_and_padding_never_matches():
    m = seen_matrix([0, 1], [4, 0], n_users=2, n_items=5)
    # -1 for user 1 would alias (user 0, item 4) in a naive user * n_items + item key.
    got = m.contains([[0, 0, 1, 1]], [[4, 0, 0, -1]])
    assert got.tolist() == [[True, False, True, False]]
    empty = seen_matrix([], [], n_users=2, n_items=5)
    assert empty.contains([0, 1], [0, 4]).tolist() == [False, False]


def test_seen_matrix_rejects_out_of_range_ids():
    with pytest.raises(ValueError, match=r"item_idx\[1\] = 5 is outside \[0, 5\)"):
        seen_matrix([0, 0], [1, 5], n_users=1, n_items=5)
    with pytest.raises(ValueError, match="user_idx"):
        seen_matrix([-1], [0], n_users=1, n_items=5)


# --- top_k -------------------------------------------------------------------------------------


def fixed(scores):
    """A score_block_fn over a fixed (n_users, n_items) matrix."""
    scores = np.asarray(scores, dtype=np.float32)
    return lambda users: scores[users]


def test_top_k_masks_seen_and_sorts_best_first():
    scores = [[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]]
    seen = seen_matrix([0, 1], [1, 0], n_users=2, n_items=4)
    got = top_k(fixed(scores), 2, 4, k=2, exclude=seen)
    # user 0 without item 1: 0.7 (3), 0.5 (2); user 1 without item 0: 0.3 (1), 0.2 (2)
    assert got.tolist() == [[3, 2], [1, 2]]
    assert got.dtype == np.int32


def test_top_k_ties_go_to_the_lower_item_even_across_the_cut():
    # Three items tie for places 2-4 of a list of 3: items 1 and 2 get in, 4 does not.
    scores = [[9.0, 5.0, 5.0, 1.0, 5.0], [2.0, 2.0, 2.0, 2.0, 2.0]]
    got = top_k(fixed(scores), 2, 5, k=3, exclude=None)
    assert got.tolist() == [[0, 1, 2], [0, 1, 2]]
    seen = seen_matrix([1], [0], n_users=2, n_items=5)
    got = top_k(fixed(scores), 2, 5, k=3, exclude=seen)
    assert got[1].tolist() == [1, 2, 3]


def test_top_k_pads_when_too_few_candidates():
    scores = [[1.0, 2.0, 3.0], [1.0, -np.inf, 3.0]]
    seen = seen_matrix([0, 0], [0, 2], n_users=2, n_items=3)
    got = top_k(fixed(scores), 2, 3, k=4, exclude=seen)
    # user 0 has only item 1 left; user 1's item 1 scores -inf (the model refuses it)
    assert got.tolist() == [[1, -1, -1, -1], [2, 0, -1, -1]]


def test_top_k_candidates_mask_and_read_only_broadcast_scores():
    counts = np.array([5.0, 9.0, 7.0, 1.0], dtype=np.float32)
    score = lambda users: np.broadcast_to(counts, (len(users), 4))  # noqa: E731
    mask = np.array([True, False, True, True])
    seen = seen_matrix([1], [2], n_users=2, n_items=4)
    got = top_k(score, 2, 4, k=2, exclude=seen, candidates_mask=mask)
    assert got.tolist() == [[2, 0], [0, 3]]
    assert counts.tolist() == [5.0, 9.0, 7.0, 1.0]  # the scorer's array is not written to


def test_top_k_matches_brute_force_with_many_ties_for_any_block_size():
    rng = np.random.default_rng(3)
    n_users, n_items, k = 37, 23, 6
    scores = rng.integers(0, 4, size=(n_users, n_items)).astype(np.float32)  # many ties
    scores[::2] += rng.random((19, n_items)).astype(np.float32) / 2  # even users: no ties
    # 300 random pairs, plus user 0 has seen all but items 0-2, so it needs padding.
    u = np.concatenate([rng.integers(0, n_users, 300), np.zeros(n_items - 3, int)])
    i = np.concatenate([rng.integers(0, n_items, 300), np.arange(3, n_items)])
    seen = seen_matrix(u, i, n_users, n_items)
    mask = rng.random(n_items) < 0.8
    expected = np.full((n_users, k), -1)
    for user in range(n_users):
        cands = [j for j in range(n_items) if mask[j] and j not in set(seen.row(user))]
        best = sorted(cands, key=lambda j: (-scores[user, j], j))[:k]
        expected[user, : len(best)] = best
    assert (expected[0] == -1).any()
    for block in (1, 5, 37, 1024):
        got = top_k(fixed(scores), n_users, n_items, k, seen, block, candidates_mask=mask)
        np.testing.assert_array_equal(got, expected)


def test_top_k_rejects_nan_and_wrong_shapes():
    with pytest.raises(ValueError, match="NaN scores for user 1"):
        top_k(fixed([[1.0, 2.0], [np.nan, 0.0]]), 2, 2, k=1, exclude=None)
    with pytest.raises(ValueError, match=r"expected \(2, 3\)"):
        top_k(fixed([[1.0, 2.0], [3.0, 0.0]]), 2, 3, k=1, exclude=None)


# --- ranking_metrics by hand ----------------------------------------------------------------------


def hand_example():
    """Four users, eight items, k = 3; user 3 has no test item and must be ignored."""
    recommended = np.array(
        [
            [0, 1, 2],  # relevant {0, 2, 5}: hits at ranks 1 and 3
            [3, 4, -1],  # relevant {4}: hit at rank 2, one empty slot
            [5, 0, 1],  # relevant {2, 3}: no hit
            [6, 7, 1],  # relevant {}: excluded from every average, coverage included
        ]
    )
    relevant = seen_matrix([0, 0, 0, 1, 2, 2], [0, 2, 5, 4, 2, 3], n_users=4, n_items=8)
    popularity = np.array([4, 2, 1, 0, 2, 1, 4, 4])
    return recommended, relevant, popularity


def test_ranking_metrics_by_hand():
    rec, rel, pop = hand_example()
    got = ranking_metrics(rec, rel, k=3, item_popularity=pop, n_train_users=4)
    # precision: (2/3 + 1/3 + 0) / 3
    assert got["precision@3"] == pytest.approx(1 / 3, abs=1e-15)
    # recall: (2/3 + 1/1 + 0/2) / 3
    assert got["recall@3"] == pytest.approx(5 / 9, abs=1e-15)
    # ndcg: user 0 (1/log2(2) + 1/log2(4)) / (1/log2(2) + 1/log2(3) + 1/log2(4)),
    #       user 1 (1/log2(3)) / (1/log2(2)), user 2 0
    ndcg = ((1 + 1 / 2) / (1 + 1 / L3 + 1 / 2) + 1 / L3 + 0) / 3
    assert got["ndcg@3"] == pytest.approx(ndcg, abs=1e-15)
    # map: user 0 (1/1 + 2/3) / min(3, 3) = 5/9, user 1 (1/2) / min(1, 3) = 1/2, user 2 0
    assert got["map@3"] == pytest.approx((5 / 9 + 1 / 2 + 0) / 3, abs=1e-15)
    assert got["hit_rate@3"] == pytest.approx(2 / 3, abs=1e-15)
    # mrr: first hits at ranks 1 and 2, none for user 2
    assert got["mrr@3"] == pytest.approx((1 + 1 / 2 + 0) / 3, abs=1e-15)
    # coverage over the evaluated users' lists: {0, 1, 2, 3, 4, 5} of 8 (user 3's 6, 7 ignored)
    assert got["coverage@3"] == pytest.approx(6 / 8, abs=1e-15)
    # novelty: slots' popularity 4,2,1 | 0->1,2 | 1,4,2 of 4 train users -> -log2(p/4) =
    #          0,1,2 | 2,1 | 2,0,1 -> 9 over 8 filled slots
    assert got["novelty@3"] == pytest.approx(9 / 8, abs=1e-15)
    assert list(got) == [
        f"{m}@3"
        for m in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr", "coverage", "novelty")
    ]


def test_ranking_metrics_truncates_to_k_and_pads_short_lists():
    rec, rel, pop = hand_example()
    # k = 1: only the first column counts. Hits: user 0 yes (item 0), users 1, 2 no.
    one = ranking_metrics(rec, rel, k=1, item_popularity=pop, n_train_users=4)
    assert one["precision@1"] == pytest.approx(1 / 3)
    # map@1: user 0 (1/1) / min(3, 1) = 1 -> mean 1/3; recall: user 0 1/3 -> mean 1/9
    assert one["map@1"] == pytest.approx(1 / 3)
    assert one["recall@1"] == pytest.approx(1 / 9)
    # k = 5 on lists of 3: precision still divides by 5 (as Spark does): (2 + 1 + 0) / 5 / 3
    five = ranking_metrics(rec, rel, k=5, item_popularity=pop, n_train_users=4)
    assert five["precision@5"] == pytest.approx(3 / 15)
    # ndcg@5 user 0: ideal has min(3, 5) = 3 hits on top, so it equals ndcg@3 for every user
    three = ranking_metrics(rec, rel, k=3, item_popularity=pop, n_train_users=4)
    assert five["ndcg@5"] == pytest.approx(three["ndcg@3"])


def test_ranking_metrics_errors():
    rec, rel, pop = hand_example()
    with pytest.raises(ValueError, match="one row per user"):
        ranking_metrics(rec[:3], rel, 3, pop, 4)
    with pytest.raises(ValueError, match="outside"):
        ranking_metrics(rec + 5, rel, 3, pop, 4)
    nobody = Interactions(np.zeros(5, np.int64), np.zeros(0, np.int32), 4, 8)
    with pytest.raises(RecsysError, match="test split is not empty"):
        ranking_metrics(rec, nobody, 3, pop, 4)


# --- agreement with Spark ------------------------------------------------------------------------


SPARK_METRICS = {
    "precision": "precisionAtK",
    "recall": "recallAtK",
    "ndcg": "ndcgAtK",
    "map": "meanAveragePrecisionAtK",
}


def test_matches_spark_ranking_evaluator(spark):
    from pyspark.ml.evaluation import RankingEvaluator

    rng = np.random.default_rng(11)
    n_users, n_items, width = 200, 50, 10
    rec = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)])
    lengths = np.where(rng.random(n_users) < 0.25, rng.integers(0, width, n_users), width)
    rec[np.arange(width) >= lengths[:, None]] = -1  # a quarter of the lists are short
    sizes = rng.integers(0, 16, n_users)  # 0 = no test item: left out on both sides
    users = np.repeat(np.arange(n_users), sizes)
    items = np.concatenate([rng.choice(n_items, s, replace=False) for s in sizes])
    rel = seen_matrix(users, items, n_users, n_items)
    rows = [
        ([float(j) for j in rec[u] if j >= 0], [float(j) for j in rel.row(u)])
        for u in range(n_users)
        if sizes[u] > 0
    ]
    df = spark.createDataFrame(rows, "prediction array<double>, label array<double>").cache()
    pop = np.ones(n_items)
    for k in (1, 10, 15):  # truncated, full width, longer than every list
        ours = ranking_metrics(rec, rel, k, pop, n_users)
        assert 0 < ours[f"map@{k}"] < 1
        for name, spark_name in SPARK_METRICS.items():
            evaluator = RankingEvaluator(metricName=spark_name, k=k)
            theirs = evaluator.evaluate(df)
            assert ours[f"{name}@{k}"] == pytest.approx(theirs, abs=1e-12), (name, k)
