"""The one top-k selector: best first, ties to the lower index, -inf never returned, -1 padding."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.topk import top_k_rows


def test_two_rows_by_hand():
    scores = np.array([[0.5, 2.0, 2.0, -np.inf], [1.0, -np.inf, -np.inf, -np.inf]], np.float32)
    assert top_k_rows(scores, 3).tolist() == [[1, 2, 0], [0, -1, -1]]


@pytest.mark.parametrize("seed", range(5))
def test_equals_a_full_sort_on_ties_and_holes(seed):
    """Rounded scores (many ties) with -inf holes and a row with fewer candidates than k."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.normal(size=(9, 50)), 1).astype(np.float32)
    scores[rng.random(scores.shape) < 0.3] = -np.inf
    scores[4, 3:] = -np.inf  # 3 candidates for k = 7
    got = top_k_rows(scores.copy(), 7)
    for row, values in enumerate(scores):
        want = [int(i) for i in np.lexsort((np.arange(50), -values)) if values[i] > -np.inf][:7]
        assert got[row].tolist() == want + [-1] * (7 - len(want))


def test_nan_scores_are_never_chosen():
    scores = np.array([[0.5, np.nan, 0.9, np.nan], [np.nan, np.nan, np.nan, 0.1]])
    got = top_k_rows(scores, 3)
    np.testing.assert_array_equal(got, [[2, 0, -1], [3, -1, -1]])
