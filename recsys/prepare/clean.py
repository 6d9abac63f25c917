"""Cleaning valid rows: duplicate (user, item) ratings and k-core filtering.

Pure ``DataFrame -> DataFrame`` functions; counts are returned next to the frames so the job can
report every row it removed and why.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys import schema as S
from recsys.errors import RecsysError

log = logging.getLogger(__name__)

DEDUPE_POLICIES = ("latest", "earliest")


def dedupe(rows: DataFrame, keep: str = "latest", keys: tuple[str, ...] = ()) -> DataFrame:
    """One row per (user, item): the latest (or earliest) by timestamp.

    Ties on the timestamp keep the higher rating, so the result never depends on row order.
    ``keys`` adds grouping columns (the ``given`` split dedupes within each file).
    """
    if keep not in DEDUPE_POLICIES:
        raise RecsysError(f"prepare.dedupe must be one of {DEDUPE_POLICIES}, got {keep!r}")
    pick = F.max if keep == "latest" else F.min
    return (
        rows.groupBy(S.USER_ID, S.ITEM_ID, *keys)
        .agg(pick(F.struct(S.TS, S.RATING)).alias("_kept"))
        .select(S.USER_ID, S.ITEM_ID, *keys, "_kept.rating", "_kept.ts")
    )


def k_core(
    rows: DataFrame, min_user: int, min_item: int, max_rounds: int = 50
) -> tuple[DataFrame, int]:
    """Drop users with < ``min_user`` rows and items with < ``min_item``, until stable.

    Removing items can push users below the bar and vice versa, hence the loop. Returns the
    filtered frame and the number of rows it removed.
    """
    if min_user <= 1 and min_item <= 1:
        return rows, 0
    current = rows.localCheckpoint()
    before = start = current.count()
    for round_ in range(max_rounds):
        if min_user > 1:
            users = current.groupBy(S.USER_ID).count().where(F.col("count") >= min_user)
            current = current.join(users.select(S.USER_ID), S.USER_ID, "left_semi")
        if min_item > 1:
            items = current.groupBy(S.ITEM_ID).count().where(F.col("count") >= min_item)
            current = current.join(items.select(S.ITEM_ID), S.ITEM_ID, "left_semi")
        current = current.localCheckpoint()
        after = current.count()
        log.info("k-core round %d: %d -> %d rows", round_ + 1, before, after)
        if after == before:
            break
        before = after
    return current, start - before
