"""User runs: a shuffled row order that keeps each user's rows side by side.

The sampled softmax of the factor models scores its candidates once per user of a batch, not once
per row (``recsys.train.ranking``, ``group``). For that to pay, a batch must hold several rows of
each of its users: the input (``recsys.train.data``) lays every epoch out in *runs* of ``group``
rows of one user, shuffled within the user and shuffled as runs, so every row is still seen once
an epoch in a random batch. A user's last run, when shorter, is padded; pads carry a NaN rating,
which the loss weighs 0 (few rows on MovieLens-shaped data: docs/tuning.md).
"""

from __future__ import annotations

import numpy as np

Columns = list[np.ndarray]  # [user_idx (n,), item_idx (n,), rating (n,)]


def run_count(lengths: np.ndarray, group: int) -> np.ndarray:
    """Runs of ``group`` rows that users of ``lengths`` rows each fill, the last one padded."""
    return -(-lengths // group)


def real_share(users: np.ndarray, group: int) -> float:
    """Share of real rows (not pads) in an epoch of ``users``' rows laid out in runs."""
    lengths = np.bincount(users)  # (n_users,) rows per user
    return float(lengths.sum() / max(1, (run_count(lengths, group) * group).sum()))


def grouped_order(users: np.ndarray, group: int, rng: np.random.Generator) -> np.ndarray:
    """A shuffled row order that keeps each user's rows side by side in runs of ``group``.

    Each user's rows are shuffled and cut into runs of ``group``; the runs are shuffled. A user's
    last run, when shorter, is padded with ``-1`` (rows ``take_rows`` marks with a NaN rating),
    so the run starting at every multiple of ``group`` belongs to one user: the ranking loss
    scores candidates once per run (``recsys.train.ranking``).

    Returns:
        ``(m,)`` row indices and ``-1`` pads, ``m`` a multiple of ``group``.
    """
    n = len(users)
    order = rng.permutation(n)  # random within each user once sorted stably
    order = order[np.argsort(users[order], kind="stable")]  # (n,) grouped by user
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])  # (u,)
    lengths = np.diff(np.r_[starts, n])  # (u,) rows per user
    runs = run_count(lengths, group)  # (u,) runs per user
    rank = np.arange(n) - np.repeat(starts, lengths)  # (n,) position within the user
    run_id = np.repeat(np.cumsum(runs) - runs, lengths) + rank // group  # (n,)
    layout = np.full((int(runs.sum()), group), -1, order.dtype)  # (runs, group)
    layout[run_id, rank % group] = order
    return layout[rng.permutation(len(layout))].ravel()


def take_rows(columns: Columns, take: np.ndarray, group: int) -> Columns:
    """The rows ``take`` of ``columns``; a ``-1`` pad (``grouped_order``) repeats the first row
    of its run with a NaN rating, which the ranking loss weighs 0."""
    if group == 1:
        return [c[take] for c in columns]
    pad = take < 0
    rows = np.where(pad, np.repeat(take[::group], group), take)  # runs start with a real row
    users, items, ratings = (c[rows] for c in columns)
    ratings[pad] = np.nan
    return [users, items, ratings]
