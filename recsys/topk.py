"""The one top-k selector of evaluation and scoring: best first, ties to the lower item index.

Evaluation and the nightly table must agree on every list, ties included, so both call this.
"""

from __future__ import annotations

import numpy as np


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a 2-D mask, via the flat index (several times faster)."""
    return np.divmod(np.flatnonzero(mask), mask.shape[1])


def _take_rows(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``a[rows]``, without the copy when ``rows`` is every row (``a`` may then be modified)."""
    return a if rows.size == a.shape[0] else a[rows]


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best items per row, best first; ties go to the lower item id.

    ``-inf`` marks a non-candidate: it is never returned, and rows with fewer than ``k``
    candidates are padded with ``-1``. ``argpartition`` alone would pick an arbitrary member of a
    tie straddling the k-th place (common for popularity scores), so the k-th value is found
    first, every item above it is taken, and the tied items are admitted lowest id first. Linear
    in ``n_items`` per row; only the ``k`` chosen items per row are sorted.
    """
    b, n = scores.shape
    out = np.full((b, k), -1, dtype=np.int32)
    if np.isnan(scores).any():  # a diverged model's NaN scores: never chosen, as -inf
        scores = np.where(np.isnan(scores), -np.inf, scores)
    kk = min(k, n)
    if b == 0 or kk == 0:
        return out
    kth = np.partition(scores, n - kk, axis=1)[:, n - kk]  # (b,) the kk-th largest score
    above = scores > kth[:, None]  # (b, n), fewer than kk per row
    tied = scores == kth[:, None]  # (b, n), at least one per row
    need = kk - above.sum(axis=1)  # (b,) places left for tied items
    straddle = tied.sum(axis=1) > need  # (b,) more tied items than places
    parts = [_nonzero(above)]
    whole = np.flatnonzero(~straddle)  # rows that take all of their tied items
    r, c = _nonzero(_take_rows(tied, whole))
    parts.append((whole[r], c))
    cut = np.flatnonzero(straddle)
    if cut.size:
        remaining = _take_rows(tied, cut)  # (r, n), cleared as items are admitted
        at = np.arange(cut.size)
        for j in range(int(need[cut].max())):  # at most kk rounds
            first = remaining.argmax(axis=1)  # (r,) lowest id still tied
            live = need[cut] > j
            parts.append((cut[live], first[live]))
            remaining[at, first] = False
    rows = np.concatenate([p[0] for p in parts])  # (b * kk,) exactly kk per row
    cols = np.concatenate([p[1] for p in parts])
    vals = scores[rows, cols]
    order = np.lexsort((cols, -vals, rows))  # by row, then best score, then lower id
    cols = cols[order].reshape(b, kk)
    cols[vals[order].reshape(b, kk) == -np.inf] = -1
    out[:, :kk] = cols
    return out
