"""Similar items: equal to a float64 cosine brute force, ties by item id, never the item itself."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.artifact import Scorer
from recsys.score.similar import item_vectors, similar_block, unit_rows, unit_vectors


def arrays_of(family: str, n_items=40, dim=4, hidden=6, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(n_items, dim)).astype(np.float32)
    if ties:  # items 10..19 are one vector: every item has equal cosines with them
        items[10:20] = items[10]
    out = {
        "family": np.array(family),
        "user_factors": rng.normal(size=(5, dim)).astype(np.float32),
        "item_factors": items,
        "item_bias": rng.normal(size=n_items).astype(np.float32),
        "mlp0_kernel": rng.normal(size=(2 * dim, hidden)).astype(np.float32),
        "out_kernel": rng.normal(size=(dim + hidden, 1)).astype(np.float32),
    }
    if family == "neumf":
        out["item_gmf"] = items[:, ::-1].copy()
    return out


def expected_vectors(arrays) -> np.ndarray:
    """The documented choice per family, in float64."""
    a = {k: np.asarray(v, np.float64) if v.dtype.kind == "f" else v for k, v in arrays.items()}
    family, dim = str(a["family"]), a["user_factors"].shape[1]
    if family == "ncf":
        return a["item_factors"] @ a["mlp0_kernel"][dim:]
    if family == "neumf":
        return a["item_gmf"] * a["out_kernel"][:dim, 0]
    return a["item_factors"]  # mf and biased-mf: no bias column


def brute_force(vecs, items, n, excluded=None):
    """Every pair's cosine in float64, candidates sorted by (-cosine, item id)."""
    norms = np.linalg.norm(vecs, axis=1)
    unit = vecs / np.where(norms > 0, norms, 1.0)[:, None]
    cos = unit @ unit.T
    lists, scores = [], []
    for i in items:
        cands = [j for j in range(len(vecs)) if j != i and (excluded is None or not excluded[j])]
        best = sorted(cands, key=lambda j: (-cos[i, j], j))[:n]
        lists.append(best)
        scores.append(cos[i, best])
    return lists, scores


@pytest.mark.parametrize("family", ["mf", "biased-mf", "ncf", "neumf"])
@pytest.mark.parametrize("ties", [False, True])
def test_similar_equals_float64_brute_force(family, ties):
    arrays = arrays_of(family, ties=ties)
    vecs = expected_vectors(arrays)
    assert np.allclose(item_vectors(arrays), vecs, atol=1e-5)
    items = np.array([0, 10, 15, 39, 7])
    got, scores = similar_block(unit_rows(item_vectors(arrays)), items, 8)
    want, want_scores = brute_force(vecs, items, 8)
    assert got.tolist() == want
    assert np.allclose(scores, np.array(want_scores), atol=1e-5)
    for row, i in enumerate(items):
        assert i not in got[row]
        assert np.all(np.diff(scores[row]) <= 1e-6)  # best first
    if ties:  # item 10's nine copies come first, in index order, at cosine 1
        assert got[1].tolist() == list(range(11, 19))
        assert np.allclose(scores[1], 1.0, atol=1e-5)


def test_exclusions_padding_and_zero_vectors():
    arrays = arrays_of("mf", n_items=6)
    arrays["item_factors"][3] = 0.0  # an all-zero vector: cosine 0 with everything
    excluded = np.array([False, True, False, False, False, False])
    unit = unit_rows(item_vectors(arrays))
    got, scores = similar_block(unit, np.array([0, 3]), 5, excluded)
    want, want_scores = brute_force(expected_vectors(arrays), [0, 3], 5, excluded)
    # 6 items minus itself minus the excluded one: 4 candidates, the 5th place padded
    assert got[:, :4].tolist() == want and (got[:, 4] == -1).all()
    assert np.isnan(scores[:, 4]).all()
    assert np.allclose(scores[:, :4], np.array(want_scores), atol=1e-6)
    assert np.allclose(scores[1, :4], 0.0)  # the zero vector's neighbours: the others in order
    assert got[1, :4].tolist() == [0, 2, 4, 5]


def test_unit_vectors_are_cached_per_scorer():
    scorer = Scorer(arrays_of("biased-mf"))
    first = unit_vectors(scorer)
    assert unit_vectors(scorer) is first
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-6)


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="no item vectors"):
        item_vectors({"family": np.array("svd")})
