"""Every user's seen items, grouped once by prepare (``prepared/.../seen/``).

Scoring excludes a user's seen items and publish checks that none was recommended; both used to
rebuild these lists from ``ratings/`` (a Spark shuffle in score, a 25 M-row join in publish). They
are a function of the prepared run, so prepare writes them here, with pyarrow in the driver (the
same reading of the written ratings as the split statistics): one row per user, ``item_idx`` the
sorted items of every split, and one row count per split (``n_train``, ``n_val``, ``n_test``) so a
reader knows whether the rows a model was trained on include the user's. The users are cut into
files of contiguous ``user_idx`` ranges, one per Spark task of the scoring job.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from recsys import schema as S

FOLDER = "seen"


def count_column(split: str) -> str:
    """The column holding a user's rows of ``split``."""
    return f"n_{split}"


def seen_arrow() -> pa.Schema:
    """Arrow schema of ``seen/``."""
    fields = [
        pa.field(S.USER_IDX, pa.int32(), nullable=False),
        pa.field(S.ITEM_IDX, pa.list_(pa.field("element", pa.int32(), nullable=False))),
    ]
    fields += [pa.field(count_column(s), pa.int32(), nullable=False) for s in S.SPLITS]
    return pa.schema(fields)


def _rows(ratings_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user_idx, item_idx, split number) of every written rating, in split order."""
    users, items, splits = [], [], []
    for number, name in enumerate(S.SPLITS):
        folder = ratings_dir / f"{S.SPLIT}={name}"
        if not folder.is_dir():
            continue
        table = pads.dataset(folder, format="parquet").to_table(columns=[S.USER_IDX, S.ITEM_IDX])
        users.append(table.column(S.USER_IDX).to_numpy().astype(np.int32, copy=False))
        items.append(table.column(S.ITEM_IDX).to_numpy().astype(np.int32, copy=False))
        splits.append(np.full(len(table), number, np.int8))
    if not users:
        return np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.int8)
    return np.concatenate(users), np.concatenate(items), np.concatenate(splits)


def write_seen(ratings_dir: Path, folder: Path, n_users: int, files: int) -> None:
    """Group the written ratings by user into ``folder`` (``files`` Parquet files).

    Args:
        ratings_dir: the prepared run's ``ratings/`` (partitioned by split).
        folder: where to write (``<staging>/seen``).
        n_users: users of the prepared run; every one gets a row (k-core leaves none empty).
        files: how many files to cut the users into (the scoring job's tasks).
    """
    users, items, splits = _rows(ratings_dir)
    # One sort of (user, item) keys: each user's list comes out sorted, which publish relies on.
    width = int(items.max()) + 1 if len(items) else 1
    items = (np.sort(users.astype(np.int64) * width + items) % width).astype(np.int32)
    offsets = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=offsets[1:])
    counts = [
        np.bincount(users[splits == k], minlength=n_users).astype(np.int32)
        for k in range(len(S.SPLITS))
    ]
    folder.mkdir(parents=True, exist_ok=True)
    schema = seen_arrow()
    bounds = np.linspace(0, n_users, max(1, min(files, n_users)) + 1).astype(np.int64)
    for part, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        lists = pa.LargeListArray.from_arrays(
            offsets[lo : hi + 1] - offsets[lo], items[offsets[lo] : offsets[hi]]
        ).cast(schema.field(S.ITEM_IDX).type)
        columns = [pa.array(np.arange(lo, hi, dtype=np.int32)), lists]
        columns += [pa.array(c[lo:hi]) for c in counts]
        table = pa.Table.from_arrays(columns, schema=schema)
        pq.write_table(table, folder / f"part-{part:05d}.parquet", compression="zstd")


def read_seen(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, items) of ``seen/``: user ``u``'s sorted items are
    ``items[offsets[u]:offsets[u + 1]]`` (rows are in ``user_idx`` order, one per user)."""
    lists = pads.dataset(folder, format="parquet").to_table(columns=[S.ITEM_IDX])
    column = lists.column(S.ITEM_IDX).combine_chunks()
    offsets = column.offsets.to_numpy().astype(np.int64)
    items = column.values.to_numpy()
    return offsets - offsets[0], items[offsets[0] : offsets[-1]]
