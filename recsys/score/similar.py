"""Each item's N nearest items by embedding cosine: the numpy half of the ``similar_items`` table.

Which vectors (``item_vectors``), per model family (declared with the family in
``recsys.families``: ``Family.item_vectors``, described by ``Family.vectors``); each is the item's
vector in the space the model compares it to users in, so two items with equal vectors score alike
for every user:

* ``mf`` / ``biased-mf``: the item factors (a user's score is ``u . v``); the item bias is left
  out: it is popularity, not likeness.
* ``ncf``: the item's share of the first dense layer, ``v @ W_i`` (``[u, v] @ W = u @ W_u +
  v @ W_i``). The item enters the model only through it, and unlike the raw MLP embedding it does
  not change when the embedding is re-parametrised (``v -> A v``, ``W_i -> A^-1 W_i``) without
  changing the model.
* ``neumf``: the GMF item embedding weighted by the output layer, ``v_gmf * w_gmf`` (the GMF
  branch scores ``u_gmf . (v_gmf * w_gmf)``); the MLP branch is non-linear in the user, so it has
  no one item vector to compare and is left out.

Vectors are scaled to unit length once (a zero vector stays zero: cosine 0 with everything), a
block of items is scored against all items as one matmul, the item itself and the excluded items
are set to ``-inf``, and the N best are selected exactly as the top-N of users
(``recsys.topk.top_k_rows``: ties to the lower item index).
"""

from __future__ import annotations

import numpy as np

from recsys.artifact import Scorer
from recsys.families import FAMILIES
from recsys.topk import top_k_rows


def item_vectors(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The items' vectors the similarity is measured on (see the module doc): (n_items, d)."""
    name = str(arrays["family"])
    spec = FAMILIES.get(name)
    if spec is None or spec.item_vectors is None:
        raise ValueError(f"no item vectors for model family {name!r}")
    return np.asarray(spec.item_vectors(arrays), np.float32)


def unit_rows(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, C order); an all-zero row stays zero."""
    vecs = np.asarray(vecs, np.float64)
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return np.ascontiguousarray(vecs / np.where(norms > 0, norms, 1.0), np.float32)


def unit_vectors(scorer: Scorer) -> np.ndarray:
    """The scorer's unit item vectors, built once per scorer (so once per Spark worker)."""
    if "similar_unit" not in scorer._cache:
        scorer._cache["similar_unit"] = unit_rows(item_vectors(scorer.arrays))
    return scorer._cache["similar_unit"]


def similar_block(
    unit: np.ndarray, items: np.ndarray, n: int, excluded: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` most similar items of each item of a block, and their cosine similarities.

    Args:
        unit: ``(n_items, d)`` unit item vectors (``unit_rows``).
        items: ``(b,)`` item indices of the block.
        n: Neighbours per item.
        excluded: ``(n_items,)`` booleans, True for items that are nobody's neighbour.

    Returns:
        ``neighbours (b, n)`` int32, best first, ties to the lower index, ``-1`` padding a list
        with fewer candidates, and ``scores (b, n)`` float32 cosines, ``NaN`` where padded.
    """
    items = np.asarray(items, np.int64)
    sims = unit[items] @ unit.T  # (b, n_items), a fresh array: top_k_rows may overwrite it
    sims[np.arange(len(items)), items] = -np.inf  # never the item itself
    if excluded is not None:
        sims[:, excluded] = -np.inf
    neighbours = top_k_rows(sims, n)  # (b, n)
    filled = neighbours >= 0
    scores = np.full(neighbours.shape, np.nan, np.float32)
    rows = np.nonzero(filled)[0]
    if rows.size:
        scores[filled] = np.einsum("kd,kd->k", unit[items[rows]], unit[neighbours[filled]])
    return neighbours, scores
