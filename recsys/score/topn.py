"""Top-N of every unseen item for a block of users: the numpy half of the scoring job.

A block of users is scored against all items as dense matrix work (``Scorer.rank_scores``), the
items each user has seen and the items excluded for everyone are set to ``-inf``, and the N best
are selected without a full sort, ties going to the lower item index (``recsys.topk``). The same
block is what the Spark adapter (``recsys.score.job``) hands to ``mapInPandas``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recsys.artifact import Scorer
from recsys.topk import top_k_rows

# The factor kernel's tile of scores, (FACTOR_USER_TILE x FACTOR_ITEM_TILE) float32 = 1 MB, is
# computed, masked and reduced to its few candidates while still in cache; the whole block would
# go through memory twice. The fastest shape measured (docs/tuning.md).
FACTOR_USER_TILE = 64
FACTOR_ITEM_TILE = 4096


def top_k_factored(
    u: np.ndarray,
    items_t: np.ndarray,
    seen_rows: np.ndarray,
    seen_cols: np.ndarray,
    k: int,
    excluded: np.ndarray | None = None,
    user_tile: int = FACTOR_USER_TILE,
    item_tile: int = FACTOR_ITEM_TILE,
) -> np.ndarray:
    """``top_k_rows(u @ items_t)`` with the seen pairs and excluded columns at ``-inf``, computed
    one cache-sized tile at a time: same result, ties to the lower column, ``-1`` padding.

    Each row keeps a threshold, the k-th best score it has met so far (one partition of its
    first tile sets it). A later tile only yields the items scoring at least that threshold,
    found with one comparison (few, once a row has seen a few thousand items); the threshold
    then rises to the k-th best of the candidates, and candidates below it are dropped.

    Exact: an item among a row's k best (by score, then lower id) scores at least every
    threshold the row ever had (thresholds only rise, and never above the final k-th best),
    so it is always kept; the candidates are then ordered exactly as ``top_k_rows`` orders a
    whole row.

    Args:
        u: ``(b, d)`` user factors; ``items_t``: ``(d, n)`` item factors, transposed.
        seen_rows, seen_cols: Pairs (row of ``u``, item) never to recommend.
        k: List length.
        excluded: Item indices nobody gets.
    """
    b, n = u.shape[0], items_t.shape[1]
    out = np.full((b, k), -1, dtype=np.int32)
    kk = min(k, n)
    if b == 0 or kk == 0:
        return out
    n_tiles = -(-n // item_tile)
    n_blocks = -(-b // user_tile)
    # Seen pairs bucketed by (user tile, item tile), so each tile masks only its own.
    key = (seen_rows // user_tile) * n_tiles + seen_cols // item_tile
    order = np.argsort(key, kind="stable")
    s_rows, s_cols = seen_rows[order], seen_cols[order]
    bounds = np.searchsorted(key[order], np.arange(n_blocks * n_tiles + 1))
    ex = np.zeros(0, np.int64) if excluded is None else np.unique(np.asarray(excluded, np.int64))
    ex_bounds = np.searchsorted(ex, np.arange(n_tiles + 1) * item_tile)
    for blk in range(n_blocks):
        r0 = blk * user_tile

        def mask(t: int, s: np.ndarray, c0: int, j0: int = blk * n_tiles, r0: int = r0) -> None:
            """Tile ``t``'s seen pairs and excluded columns to ``-inf``."""
            lo, hi = bounds[j0 + t], bounds[j0 + t + 1]
            if hi > lo:
                s[s_rows[lo:hi] - r0, s_cols[lo:hi] - c0] = -np.inf
            if ex_bounds[t + 1] > ex_bounds[t]:
                s[:, ex[ex_bounds[t] : ex_bounds[t + 1]] - c0] = -np.inf

        ub = u[r0 : r0 + user_tile]
        cand_r, cand_c, cand_v = _candidates(ub, items_t, kk, item_tile, n_tiles, mask)
        order = np.lexsort((cand_c, -cand_v, cand_r))  # by row, best score, lower id
        rows, cols = cand_r[order], cand_c[order]
        starts = np.searchsorted(rows, np.arange(ub.shape[0]))
        place = np.arange(rows.size) - starts[rows]
        take = place < kk
        out[r0 + rows[take], place[take]] = cols[take]
    return out


def _candidates(ub, items_t, kk, item_tile, n_tiles, mask):
    """One block of users' candidates ``(rows, cols, scores)``: every item scoring at least its
    row's threshold when its tile was scanned, the threshold rising to the k-th best so far."""
    m = ub.shape[0]
    theta = np.full(m, -np.inf, np.float32)  # each row's k-th best so far
    cand_r = np.zeros(0, np.int64)
    cand_c = np.zeros(0, np.int64)
    cand_v = np.zeros(0, np.float32)
    for t in range(n_tiles):
        c0 = t * item_tile
        s = ub @ items_t[:, c0 : c0 + item_tile]  # (m, w): in cache from here on
        mask(t, s, c0)
        w = s.shape[1]
        if t == 0 and w > kk:
            theta = np.maximum(theta, np.partition(s, w - kk, axis=1)[:, w - kk])
        flat = np.flatnonzero(s >= theta[:, None])
        rows, cols = np.divmod(flat, w)
        vals = s.ravel()[flat]
        keep = vals > -np.inf
        cand_r = np.concatenate([cand_r, rows[keep]])
        cand_c = np.concatenate([cand_c, cols[keep] + c0])
        cand_v = np.concatenate([cand_v, vals[keep]])
        # Raise each row's threshold to the k-th best of its candidates; drop the rest.
        order = np.lexsort((-cand_v, cand_r))
        cand_r, cand_c, cand_v = cand_r[order], cand_c[order], cand_v[order]
        starts = np.searchsorted(cand_r, np.arange(m + 1))
        full = np.flatnonzero(np.diff(starts) >= kk)
        theta[full] = np.maximum(theta[full], cand_v[starts[full] + kk - 1])
        keep = cand_v >= theta[cand_r]
        cand_r, cand_c, cand_v = cand_r[keep], cand_c[keep], cand_v[keep]
    return cand_r, cand_c, cand_v


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
    lengths = np.fromiter((len(s) for s in seen), dtype=np.int64, count=len(seen))
    rows = np.repeat(np.arange(len(seen)), lengths)
    cols = np.concatenate([np.asarray(s, np.int64) for s in seen]) if len(seen) else rows
    factors = scorer.order_factors(users)
    if factors is not None:  # factor models: fused, tile by tile, in cache
        excluded_idx = None if excluded is None else np.flatnonzero(excluded)
        items = top_k_factored(*factors, rows, cols, n, excluded_idx)
    else:
        ranks = np.asarray(scorer.order_scores(users), np.float32)  # (b, n_items), fresh
        if rows.size:  # mask seen items by index: O(seen), not a (b, n_items) mask
            ranks[rows, cols] = -np.inf
        if excluded is not None:
            ranks[:, excluded] = -np.inf
        items = top_k_rows(ranks, n)  # (b, n)
    filled = items >= 0
    scores = np.full(items.shape, np.nan, np.float32)
    rows = np.nonzero(filled)[0]
    if rows.size:
        scores[filled] = scorer.predict(users[rows], items[filled])
    return items, scores
