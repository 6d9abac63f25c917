"""Contiguous int32 indices for users and items, deterministic for a given input.

Ids are sorted (numerically when every id is an integer, else as text) and numbered from 0, so the
same input always yields the same indices whatever Spark's partitioning, and ``item_idx`` order
equals item id order (leave-last breaks timestamp ties by it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys import schema as S

JOIN_KEY = "_key"


def build_index(keys: pd.Series, id_name: str, idx_name: str) -> pd.DataFrame:
    """Number distinct ids 0..n-1 in sorted order.

    Returns ``_key`` (the id as it appears in the cleaned rows, for the join), ``id_name`` (the
    original id: int64 when every id is an integer, else string) and ``idx_name`` (int32).
    """
    keys = pd.Series(keys.unique())
    typed = keys
    if keys.dtype == object:
        as_int = pd.to_numeric(keys, errors="coerce", downcast=None)
        canonical = as_int.notna().all() and (as_int.astype("int64").astype(str) == keys).all()
        typed = as_int.astype("int64") if canonical else keys.astype(str)
    order = np.argsort(typed.to_numpy(), kind="stable")
    table = pd.DataFrame(
        {
            JOIN_KEY: keys.to_numpy()[order],
            id_name: typed.to_numpy()[order],
            idx_name: np.arange(len(keys), dtype=np.int32),
        }
    )
    if len(table) > np.iinfo(np.int32).max:
        raise OverflowError(f"{len(table)} distinct {id_name} values exceed int32 indices")
    return table


def item_table(index: pd.DataFrame, stats: pd.DataFrame, titles: pd.DataFrame) -> pd.DataFrame:
    """The items table: id, idx, title, genres, rating count and mean.

    ``stats`` holds ``_key, n_ratings, mean_rating``; ``titles`` holds ``item_id`` as text, title
    and genres from the item file (may be empty: generic logs have none).
    """
    out = index.merge(stats, on=JOIN_KEY, how="left")
    text_key = out[JOIN_KEY].astype(str)
    titles = titles.drop_duplicates(S.ITEM_ID).set_index(S.ITEM_ID)
    out[S.TITLE] = text_key.map(titles[S.TITLE]) if len(titles) else None
    genres = text_key.map(titles[S.GENRES]) if len(titles) else pd.Series([None] * len(out))
    out[S.GENRES] = [g if isinstance(g, list) else [] for g in genres]
    out[S.N_RATINGS] = out[S.N_RATINGS].astype("int64")
    out[S.MEAN_RATING] = out[S.MEAN_RATING].astype("float32")
    return out[list(S.ITEMS_COLUMNS)]
