"""Top-N of every unseen item for a block of users: the numpy half of the scoring job.

A block of users is scored against all items as dense matrix work (``Scorer.rank_scores``), the
items each user has seen and the items excluded for everyone are set to ``-inf``, and the N best
are selected without a full sort, ties going to the lower item index (``select_top_k``). The
same block is what the Spark adapter (``recsys.score.job``) hands to ``mapInPandas``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.score.kernels import Scorer


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best columns per row, best first, ties to the lower column; ``-1`` pads rows
    with fewer than ``k`` finite scores. ``scores`` is overwritten (it is the caller's scratch).

    Three passes over the block: a partition finds each row's k-th value, one comparison keeps
    every column at least that good (ties included, so the lower-id rule can be applied), and
    only those few candidates are sorted.
    """
    b, n = scores.shape
    out = np.full((b, k), -1, dtype=np.int32)
    kk = min(k, n)
    if b == 0 or kk == 0:
        return out
    kth = np.partition(scores, n - kk, axis=1)[:, n - kk]  # (b,)
    rows, cols = np.nonzero(scores >= kth[:, None])  # (m,) every row's k best and its ties
    vals = scores[rows, cols]
    keep = vals > -np.inf
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    order = np.lexsort((cols, -vals, rows))  # by row, best score, lower id
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(b))  # first candidate of each row
    place = np.arange(rows.size) - starts[rows]  # position within the row
    take = place < kk
    out[rows[take], place[take]] = cols[take]
    return out


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
    ranks = np.asarray(scorer.order_scores(users), np.float32)  # (b, n_items), a fresh array
    lengths = np.fromiter((len(s) for s in seen), dtype=np.int64, count=len(seen))
    if lengths.sum():  # mask seen items by index: O(seen), not a (b, n_items) mask
        rows = np.repeat(np.arange(len(seen)), lengths)
        ranks[rows, np.concatenate([np.asarray(s, np.int64) for s in seen])] = -np.inf
    if excluded is not None:
        ranks[:, excluded] = -np.inf
    items = top_k_rows(ranks, n)  # (b, n)
    filled = items >= 0
    scores = np.full(items.shape, np.nan, np.float32)
    rows = np.nonzero(filled)[0]
    if rows.size:
        scores[filled] = scorer.predict(users[rows], items[filled])
    return items, scores
