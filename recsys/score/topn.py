"""Top-N of every unseen item for a block of users: the numpy half of the scoring job.

A block of users is scored against all items as dense matrix work (``Scorer.rank_scores``), the
items each user has seen and the items excluded for everyone are set to ``-inf``, and the N best
are selected without a full sort, ties going to the lower item index (``select_top_k``). The
same block is what the Spark adapter (``recsys.score.job``) hands to ``mapInPandas``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.evaluate.ranking import select_top_k
from recsys.score.kernels import Scorer


def seen_mask(seen: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """``(b, n_items)`` booleans, True where row ``r`` has seen the item."""
    mask = np.zeros((len(seen), n_items), dtype=bool)
    lengths = np.fromiter((len(s) for s in seen), dtype=np.int64, count=len(seen))
    if lengths.sum():
        rows = np.repeat(np.arange(len(seen)), lengths)
        mask[rows, np.concatenate([np.asarray(s, np.int64) for s in seen])] = True
    return mask


def top_n_block(
    scorer: Scorer,
    users: np.ndarray,
    seen: Sequence[np.ndarray],
    n: int,
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best unseen items of each user and their scores.

    Args:
        scorer: The model's numpy kernel.
        users: ``(b,)`` user indices.
        seen: Per user, the item indices never to recommend back (every split).
        n: List length.
        excluded: ``(n_items,)`` booleans, True for items nobody gets (e.g. too few ratings).

    Returns:
        ``items (b, n)`` int32 (``-1`` pads a list with fewer candidates) and ``scores (b, n)``
        float32 on the model's output scale (predicted rating, or the ranking logit), ``NaN``
        where padded.
    """
    users = np.asarray(users, np.int64)
    ranks = np.asarray(scorer.rank_scores(users), np.float32)  # (b, n_items), a fresh array
    ranks[seen_mask(seen, ranks.shape[1])] = -np.inf
    if excluded is not None:
        ranks[:, excluded] = -np.inf
    items = select_top_k(ranks, n)  # (b, n)
    filled = items >= 0
    scores = np.full(items.shape, np.nan, np.float32)
    rows = np.nonzero(filled)[0]
    if rows.size:
        scores[filled] = scorer.predict(users[rows], items[filled])
    return items, scores
