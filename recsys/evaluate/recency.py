"""Recency-weighted EASE: the same item-item weights, each user's history weighted by its age.

EASE (``recsys.evaluate.baselines.EASE``) scores a user by the binary row ``X_u`` of everything
they rated in train, so the film watched yesterday counts as much as the one of ten years ago.
A nightly list is read when the user comes back and should follow what they did last, so this
baseline keeps EASE's fitted ``B`` and only changes the row it is multiplied by: the item the
user rated ``a`` rows before their newest train row gets weight ``decay ** a`` (their newest gets
1). ``decay = 1`` is EASE itself; the decay is chosen on the validation split
(``recsys.evaluate.protocol.fit_recency_ease``), so the baseline is never worse than EASE there.
No training, one more hyper-parameter: the bar a time-aware model has to clear.

A user's rows are put in time order by timestamp, ties by the higher item index last: the same
order the leave-last and return splits use, so "the newest train row" means the same row
everywhere. A pair rated twice keeps the age of its newest row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.evaluate.baselines import EASE
from recsys.evaluate.ranking import Interactions

# Validation grid of the decay per row of age: 0.8 forgets a row in about 5 rows, 0.99 in about
# 100; 1.0 is plain EASE, so the chosen decay never loses to EASE on validation.
RECENCY_DECAYS = (0.8, 0.9, 0.95, 0.97, 0.99, 1.0)
# The decay without a validation split: nothing then says whether time order matters (a
# stratified or random holdout has none), so the row stays EASE's own.
RECENCY_DECAY = 1.0


@dataclass(frozen=True)
class History:
    """Each user's distinct train items with the age of their newest row.

    ``seen`` is the binary train matrix (what ``EASE`` uses and what is never recommended back);
    ``ages[j]`` belongs to ``seen.indices[j]``: 0 for the user's newest train row, 1 for the one
    before it, and so on.
    """

    seen: Interactions
    ages: np.ndarray  # (nnz,) int64, aligned with seen.indices

    @classmethod
    def build(
        cls,
        train_df: pd.DataFrame,
        n_users: int,
        n_items: int,
        col_user: str = S.USER_IDX,
        col_item: str = S.ITEM_IDX,
        col_ts: str = S.TS,
    ) -> History:
        """The history of every user from the train rows (user, item and timestamp columns)."""
        missing = [c for c in (col_user, col_item, col_ts) if c not in train_df.columns]
        if missing:
            raise RecsysError(
                f"The train ratings have no column(s) {missing} (columns: "
                f"{list(train_df.columns)}); recency needs the user, item and timestamp columns."
            )
        u = train_df[col_user].to_numpy().astype(np.int64)
        i = train_df[col_item].to_numpy().astype(np.int64)
        ts = train_df[col_ts].to_numpy().astype(np.int64)
        if u.size and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
            raise ValueError(f"user/item indices outside [0, {n_users}) x [0, {n_items}).")
        order = np.lexsort((i, ts, u))  # by user, then time, then item: oldest first
        u, i = u[order], i[order]
        counts = np.bincount(u, minlength=n_users)  # (n_users,)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        ages = (starts + counts)[u] - 1 - np.arange(u.size)  # (n,) 0 = newest of the user
        by_pair = np.lexsort((ages, i, u))  # each pair's newest row first
        keys = u[by_pair] * n_items + i[by_pair]
        first = np.concatenate([[True], keys[1:] != keys[:-1]]) if keys.size else keys > 0
        keys, ages = keys[first], ages[by_pair][first]
        indptr = np.zeros(n_users + 1, np.int64)
        np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
        seen = Interactions(indptr, (keys % n_items).astype(np.int32), n_users, n_items)
        return cls(seen, ages)

    def weighted_rows(self, users: ArrayLike, decay: float) -> np.ndarray:
        """``decay ** age`` of each user's items, zero elsewhere: ``(b, n_items)`` float32."""
        users = np.asarray(users, np.int64).ravel()
        start, stop = self.seen.indptr[users], self.seen.indptr[users + 1]
        lens = stop - start  # (b,)
        offsets = np.repeat(start - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        out = np.zeros((users.size, self.seen.n_items), np.float32)
        weights = np.power(float(decay), self.ages[offsets])
        out[np.repeat(np.arange(users.size), lens), self.seen.indices[offsets]] = weights
        return out


class RecencyEASE:
    """EASE's scores with each user's row weighted by recency: ``(decay ** age)_u B``.

    Args:
        ease: A fitted ``EASE`` (its ``B`` is reused as it is).
        history: The same train rows with their ages (``History.build``).
        decay: Weight of a row per row of age, in ``(0, 1]``.
    """

    def __init__(self, ease: EASE, history: History, decay: float) -> None:
        if ease.weights is None:
            raise RuntimeError("RecencyEASE needs a fitted EASE.")
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}.")
        self.ease = ease
        self.history = history
        self.decay = float(decay)

    def score_block(self, user_ids: ArrayLike) -> np.ndarray:
        """``W_u B`` for a block of users, ``(b, n_items)`` float32."""
        return self.history.weighted_rows(user_ids, self.decay) @ self.ease.weights
