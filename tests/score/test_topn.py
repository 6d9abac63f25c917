"""Top-N of unseen items: equal to a float64 brute force, ties by item id, seen items never back."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.artifact import Scorer
from recsys.score.topn import top_n_block
from recsys.topk import top_k_rows


def mf_arrays(n_users=7, n_items=40, dim=3, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(n_users, dim)).astype(np.float32)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    if ties:  # identical items score identically for everyone
        items[10:20] = items[10]
    return {
        "family": np.array("mf"),
        "objective": np.array("ranking"),
        "user_factors": users,
        "item_factors": items,
        "rating_min": np.float32(1),
        "rating_max": np.float32(5),
        "global_mean": np.float32(3),
        "offset": np.float32(0),
        "sigmoid": np.bool_(False),
    }


def brute_force(arrays, users, seen, n, excluded=None):
    """Every pair in float64, sorted by (-score, item id)."""
    scores = arrays["user_factors"].astype(np.float64) @ arrays["item_factors"].astype(np.float64).T
    out = []
    for row, u in enumerate(users):
        cands = [
            i
            for i in range(scores.shape[1])
            if i not in set(seen[row]) and (excluded is None or not excluded[i])
        ]
        out.append(sorted(cands, key=lambda i: (-scores[u, i], i))[:n])
    return out


@pytest.mark.parametrize("ties", [False, True])
def test_top_n_equals_float64_brute_force(ties):
    arrays = mf_arrays(ties=ties)
    users = np.array([0, 3, 6, 2])
    seen = [np.array([1, 2, 3]), np.array([], np.int64), np.arange(0, 40, 2), np.array([10, 11])]
    items, scores = top_n_block(Scorer(arrays), users, seen, 10)
    assert items.tolist() == brute_force(arrays, users, seen, 10)
    for row, u in enumerate(users):
        expected = arrays["user_factors"][u] @ arrays["item_factors"][items[row]].T
        assert np.allclose(scores[row], expected, atol=1e-5)
        assert np.all(np.diff(scores[row]) <= 1e-6)  # non-increasing
        assert not set(items[row]) & set(seen[row].tolist())


def test_short_lists_are_padded_and_exclusions_hold():
    arrays = mf_arrays(n_items=6)
    excluded = np.array([False, True, False, False, False, False])
    seen = [np.array([0, 2, 3])]
    items, scores = top_n_block(Scorer(arrays), np.array([1]), seen, 4, excluded)
    assert items[0, :2].tolist() == brute_force(arrays, [1], seen, 4, excluded)[0]
    assert items[0, 2:].tolist() == [-1, -1] and np.isnan(scores[0, 2:]).all()


def test_order_scores_rank_like_rank_scores():
    arrays = {**mf_arrays(), "family": np.array("biased-mf")}
    arrays["item_bias"] = np.linspace(-1, 1, 40).astype(np.float32)
    arrays["user_bias"] = np.arange(7, dtype=np.float32)
    scorer = Scorer(arrays)
    users = np.arange(7)
    full = scorer.rank_scores(users)
    fast = scorer.order_scores(users)
    # Equal up to a per-user constant (user bias + offset), so the order within a row is equal.
    assert np.allclose(full - fast, (arrays["user_bias"] + arrays["offset"])[:, None], atol=1e-5)


def test_executor_code_never_imports_tensorflow():
    """What the Spark workers import to score (the UDF and its kernels) stays TensorFlow-free."""
    import subprocess
    import sys

    code = (
        "import sys, recsys.score.job, recsys.score.topn; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("user_tile", "item_tile"), [(3, 5), (2, 7), (64, 4096), (1, 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_tiled_selection_equals_the_whole_block(user_tile, item_tile, seed):
    """Tile by tile (seen and excluded items masked per tile) = the whole masked block, with
    ties across tile boundaries going to the lower item id, and short rows padded."""
    from recsys.score.topn import top_k_factored

    rng = np.random.default_rng(seed)
    b, n, d, k = 11, 23, 2, 6
    u = rng.integers(-2, 3, size=(b, d)).astype(np.float32)  # few distinct scores: many ties
    items_t = rng.integers(-2, 3, size=(d, n)).astype(np.float32)
    seen_rows = np.repeat(np.arange(b), rng.integers(0, 8, size=b))
    seen_cols = rng.integers(0, n, size=seen_rows.size)
    seen_rows = np.concatenate([seen_rows, np.full(n - 2, 4)])  # user 4 has 2 candidates left
    seen_cols = np.concatenate([seen_cols, np.arange(n - 2)])
    excluded = np.array([3, 11, 17])
    block = (u @ items_t).astype(np.float32)
    block[seen_rows, seen_cols] = -np.inf
    block[:, excluded] = -np.inf
    want = top_k_rows(block.copy(), k)
    got = top_k_factored(
        u, items_t, seen_rows, seen_cols, k, excluded, user_tile=user_tile, item_tile=item_tile
    )
    np.testing.assert_array_equal(got, want)
    assert (got[4] >= 0).sum() <= 2 and (got[4, 2:] == -1).all()
