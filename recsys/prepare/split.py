"""Train / validation / test splits. Pure ``DataFrame -> DataFrame`` functions adding ``split``.

* ``random``: a hash of (user_idx, item_idx, seed) decides, so the split is the same whatever
  Spark's partitioning (``rand(seed)`` is not).
* ``temporal``: one global time cutoff, so every train row precedes every test row (as in the
  temporal-split write-up); validation is the last slice of train the same way.
* ``leave-last``: each user's last N rows (by time, ties by item) go to test and the N before
  them to validation: the standard protocol for top-N metrics. A user keeps at least one train row.
* ``return``: each user's first row after their last pause of at least ``prepare.gap`` (``1d``)
  is the test row, the row before it validation, only earlier rows train: the question a
  nightly table answers (what does a user want when they come back). Rows after the test row
  (the rest of that visit) are the split ``after``: never trained on nor evaluated, still in
  the prepared ratings (so scoring masks them as seen) and counted in the manifest. A user with
  no such pause, or whose pause leaves no train row, keeps every row in train and is counted
  too. Time order is leave-last's (timestamp, ties by item), so a same-second tie never is a
  pause.
* ``given``: the source already says (separate train and test files); validation is carved from
  train at random.
* ``stratified``: within each item (``prepare.stratify_by``, or each user), rows in a seeded
  random order; the first ``1 - test_fraction`` of them (``rank / count <= 1 - test_fraction``) go
  to train, the rest to test, so every item keeps its share in both. This is the protocol of the
  Microsoft Recommenders MovieLens benchmark (75/25 by item, k=10, seen items removed), whose
  published NDCG@10 figures recsys can then be compared with: an item with a single rating lands
  in test, as there. Validation is the last ``val_fraction`` of each item's train share.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recsys import schema as S
from recsys.config import PrepareConfig
from recsys.errors import RecsysError

SPLIT_KINDS = ("random", "temporal", "leave-last", "return", "given", "stratified")
AFTER = "after"  # the return split's rows after each user's test row
_GAP_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STRATIFY_BY = ("item", "user")
ORIGIN = "_origin"  # train/test file of a given split
_BUCKETS = 1_000_000


def _unit_hash(seed: int) -> Column:
    """A deterministic number in [0, 1) per (user, item)."""
    h = F.xxhash64(F.col(S.USER_IDX), F.col(S.ITEM_IDX), F.lit(seed))
    return F.pmod(h, F.lit(_BUCKETS)) / F.lit(float(_BUCKETS))


def _random(rows: DataFrame, test: float, val: float, seed: int) -> DataFrame:
    u = _unit_hash(seed)
    val_upper = test + (1.0 - test) * val
    return rows.withColumn(
        S.SPLIT,
        F.when(u < test, "test").when(u < val_upper, "val").otherwise("train"),
    )


def _temporal(rows: DataFrame, test: float, val: float) -> DataFrame:
    def cutoff(frame: DataFrame, share: float) -> int | None:
        if share <= 0:
            return None
        (q,) = frame.approxQuantile(S.TS, [1.0 - share], 1e-4)
        return int(q)

    test_cut = cutoff(rows, test)
    train = rows if test_cut is None else rows.where(F.col(S.TS) < test_cut)
    val_cut = cutoff(train, val)
    split = F.lit("train")
    if val_cut is not None:
        split = F.when(F.col(S.TS) >= val_cut, "val").otherwise(split)
    if test_cut is not None:
        split = F.when(F.col(S.TS) >= test_cut, "test").otherwise(split)
    return rows.withColumn(S.SPLIT, split)


def _leave_last(rows: DataFrame, n_test: int, n_val: int, user_col: str) -> DataFrame:
    user = Window.partitionBy(user_col)
    recent = user.orderBy(F.col(S.TS).desc(), F.col(S.ITEM_IDX).desc())
    rank = F.row_number().over(recent)
    n = F.count(F.lit(1)).over(user)
    split = (
        F.when((rank <= n_test) & (n > n_test), "test")
        .when((rank <= n_test + n_val) & (n > n_test + n_val), "val")
        .otherwise("train")
    )
    return rows.withColumn(S.SPLIT, split)


def parse_gap(text: str) -> int:
    """``'1d'``, ``'12h'``, ``'30m'``, ``'90s'`` or plain seconds -> seconds (> 0)."""
    value = str(text).strip().lower()
    unit = _GAP_UNITS.get(value[-1:])
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds < 2**62:  # nan, inf and sub-second gaps too
        raise RecsysError(
            f"--gap must be a positive duration such as 1d, 12h, 30m or 90s, got {text!r}"
        )
    return int(seconds)


def _return(rows: DataFrame, gap_seconds: int, user_col: str) -> DataFrame:
    user = Window.partitionBy(user_col)
    in_time = user.orderBy(F.col(S.TS), F.col(S.ITEM_IDX))
    pos, test_pos = "_pos", "_test_pos"
    pause = (F.col(S.TS) - F.lag(S.TS).over(in_time)) >= gap_seconds  # null on the first row
    with_pos = rows.withColumn(pos, F.row_number().over(in_time)).withColumn(
        "_pause", F.coalesce(pause, F.lit(False))
    )
    last_pause = F.max(F.when(F.col("_pause"), F.col(pos))).over(user)  # null: no pause
    marked = with_pos.withColumn(test_pos, last_pause)
    returns = F.col(test_pos) >= 3  # a val row and at least one train row before it
    split = (
        F.when(~F.coalesce(returns, F.lit(False)), "train")
        .when(F.col(pos) == F.col(test_pos), "test")
        .when(F.col(pos) == F.col(test_pos) - 1, "val")
        .when(F.col(pos) > F.col(test_pos), AFTER)
        .otherwise("train")
    )
    return marked.withColumn(S.SPLIT, split).drop(pos, "_pause", test_pos)


def return_counts(ratings_dir: Path) -> dict[str, int]:
    """What the return split did, read back from the written ``split=<name>`` folders.

    ``returning_users``: users with a test row; ``users_without_return`` and
    ``rows_of_users_without_return``: users with no pause of the gap (or none that leaves a
    train row), whose rows all stayed in train; ``after_test_rows``: rows after a test row.
    """

    def users(name: str) -> np.ndarray:
        folder = ratings_dir / f"split={name}"
        if not folder.is_dir():
            return np.zeros(0, np.int64)
        table = pads.dataset(folder, format="parquet").to_table(columns=[S.USER_IDX])
        return table.column(S.USER_IDX).to_numpy()

    returning = np.unique(users("test"))
    train = users("train")
    staying = ~np.isin(train, returning)
    return {
        "returning_users": int(returning.size),
        "users_without_return": int(np.unique(train[staying]).size),
        "rows_of_users_without_return": int(staying.sum()),
        "after_test_rows": int(users(AFTER).size),
    }


def _given(rows: DataFrame, val: float, seed: int) -> DataFrame:
    u = _unit_hash(seed)
    is_test = F.col(ORIGIN) == "test"
    split = F.when(is_test, "test").when(u < val, "val").otherwise("train")
    return rows.withColumn(S.SPLIT, split).drop(ORIGIN)


def _stratified(rows: DataFrame, test: float, val: float, seed: int, by: str) -> DataFrame:
    group = Window.partitionBy(S.ITEM_IDX if by == "item" else S.USER_IDX)
    order = group.orderBy(_unit_hash(seed), S.USER_IDX, S.ITEM_IDX)
    share = F.row_number().over(order) / F.count(F.lit(1)).over(group)  # (0, 1]
    train_upper = 1.0 - test
    split = (
        F.when(share > train_upper, "test")
        .when(share > train_upper * (1.0 - val), "val")
        .otherwise("train")
    )
    return rows.withColumn(S.SPLIT, split)


def check_split(cfg: PrepareConfig, has_test_input: bool, has_ts: bool) -> None:
    """Reject split options that cannot work, before any Spark work."""
    if cfg.split not in SPLIT_KINDS:
        raise RecsysError(f"--split must be one of {', '.join(SPLIT_KINDS)}, got {cfg.split!r}")
    for name in ("test_fraction", "val_fraction"):
        value = getattr(cfg, name)
        if not 0.0 <= value < 1.0:
            raise RecsysError(f"--{name.replace('_', '-')} must be in [0, 1), got {value}")
    if cfg.stratify_by not in STRATIFY_BY:
        raise RecsysError(f"prepare.stratify_by must be item or user, got {cfg.stratify_by!r}")
    if cfg.leave_last < 1 or cfg.leave_last_val < 0:
        raise RecsysError("--leave-last must be >= 1 and prepare.leave_last_val >= 0")
    if cfg.split == "given" and not has_test_input:
        raise RecsysError("--split given needs the test rows in --test-input PATH")
    if cfg.split != "given" and has_test_input:
        raise RecsysError("--test-input is only used with --split given")
    if cfg.split == "return":
        parse_gap(cfg.gap)
    if cfg.split in ("temporal", "leave-last", "return") and not has_ts:
        raise RecsysError(
            f"--split {cfg.split} orders rows by time but the input has no timestamp column; "
            "use --split random or name the column with --ts-col"
        )


def assign_split(rows: DataFrame, cfg: PrepareConfig, user_col: str = S.USER_IDX) -> DataFrame:
    """Add the ``split`` column (train / val / test) according to ``cfg``.

    ``user_col`` is the column leave-last and return group by: any one-to-one user key works,
    and grouping by the column the rows are already partitioned on saves a shuffle.
    """
    if cfg.split == "random":
        return _random(rows, cfg.test_fraction, cfg.val_fraction, cfg.seed)
    if cfg.split == "temporal":
        return _temporal(rows, cfg.test_fraction, cfg.val_fraction)
    if cfg.split == "leave-last":
        return _leave_last(rows, cfg.leave_last, cfg.leave_last_val, user_col)
    if cfg.split == "return":
        return _return(rows, parse_gap(cfg.gap), user_col)
    if cfg.split == "stratified":
        return _stratified(rows, cfg.test_fraction, cfg.val_fraction, cfg.seed, cfg.stratify_by)
    return _given(rows, cfg.val_fraction, cfg.seed)
