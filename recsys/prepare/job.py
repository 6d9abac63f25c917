"""The prepare step: raw ratings log -> validated, deduplicated, indexed, split Parquet.

I/O happens here and only here; the transforms it wires are pure functions in ``parse``,
``clean``, ``index`` and ``split``. Run it as ``recsys prepare --input PATH`` or
``spark-submit jobs/prepare.py --input PATH``.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

import recsys
from recsys import integrity, storage
from recsys import schema as S
from recsys.config import Config, to_dict
from recsys.data.formats import FormatSpec, Located, check_header, locate
from recsys.data.items import read_items
from recsys.errors import RecsysError
from recsys.manifests import PreparedManifest, Quarantine
from recsys.prepare import clean, index, parse, read, split
from recsys.spark import get_spark

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrepareResult:
    path: Path
    manifest: PreparedManifest


def fingerprint(paths: list[Path]) -> str:
    """sha256 over the input files' names, sizes and bytes: same input, same fingerprint."""
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            digest.update(f"{f.name}:{f.stat().st_size}\n".encode())
            with open(f, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
    return digest.hexdigest()


def _rating_range(spec: FormatSpec, cfg: Config, implicit: bool) -> tuple[float, float]:
    lo = cfg.source.rating_min if cfg.source.rating_min == cfg.source.rating_min else None
    hi = cfg.source.rating_max if cfg.source.rating_max == cfg.source.rating_max else None
    if implicit:
        return 1.0, 1.0
    return (spec.rating_min if lo is None else lo), (spec.rating_max if hi is None else hi)


def _write_small(table: pd.DataFrame, folder: Path, arrow_schema: pa.Schema | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, schema=arrow_schema, preserve_index=False)
    pq.write_table(arrow, folder / "part-00000.parquet", compression="zstd")


def _split_stats(ratings_dir: Path) -> dict[str, Any]:
    """Counts per split (and of the return split's ``after`` rows, when written), rating range
    and train mean, read back from the written Parquet."""
    stats: dict[str, Any] = {"counts": {}, "rating_min": None, "rating_max": None}
    lo, hi = float("inf"), float("-inf")
    after = [split.AFTER] if (ratings_dir / f"split={split.AFTER}").is_dir() else []
    for name in (*S.SPLITS, *after):
        folder = ratings_dir / f"split={name}"
        if not folder.is_dir():
            _write_small(pd.DataFrame(columns=S.RATINGS_ARROW.names), folder, S.RATINGS_ARROW)
        table = pads.dataset(folder, format="parquet").to_table(columns=[S.RATING])
        ratings = table.column(S.RATING)
        stats["counts"][name] = len(ratings)
        if len(ratings):
            import pyarrow.compute as pc

            mm = pc.min_max(ratings)
            lo, hi = min(lo, mm["min"].as_py()), max(hi, mm["max"].as_py())
            if name == "train":
                stats["global_mean"] = float(pc.mean(ratings.cast(pa.float64())).as_py())
    stats["rating_min"], stats["rating_max"] = lo, hi
    return stats


def _write_quarantine(
    spark, checked, located: Located, extra_headers: int, items_read, folder: Path
) -> None:
    """Every rejected row with its raw line and reason, in one Parquet file."""
    from pyspark.sql import functions as F

    reason = F.col(S.REASON)
    quarantine = checked.where(reason.isNotNull() & (reason != parse.HEADER_MARK)).select(
        *S.QUARANTINE_COLUMNS
    )
    extra = [(str(located.ratings), located.spec.header, S.REASON_HEADER)] * extra_headers
    extra += [(str(located.items), line, why) for line, why in items_read.rejected]
    if extra:
        quarantine = quarantine.unionByName(spark.createDataFrame(extra, quarantine.schema))
    quarantine.coalesce(1).write.parquet(str(folder))


def _load(spark, cfg: Config, located: Located, test_located: Located | None):
    """Raw rows of the input (and of the given test file), with the grouping keys dedupe needs."""
    from pyspark.sql import functions as F

    if located.spec.text:
        raw = read.RawInput(read.read_text(spark, located), implicit=False, has_ts=True)
    else:
        raw = read.read_table(spark, located, cfg.source)
    split.check_split(cfg.prepare, test_located is not None, raw.has_ts)
    if test_located is None:
        return raw, ()
    test_rows = read.read_text(spark, test_located).withColumn(split.ORIGIN, F.lit("test"))
    rows = raw.rows.withColumn(split.ORIGIN, F.lit("train")).unionByName(test_rows)
    return read.RawInput(rows, raw.implicit, raw.has_ts), (split.ORIGIN,)


def check_drift(root: str, source: Path, min_share: float, **now: int) -> None:
    """Refuse an input that shrank below ``min_share`` of the previous prepared run (rows, users,
    items after cleaning): a half-empty export must not be trained on and published."""
    if min_share <= 0:
        return
    try:
        previous_dir = storage.latest(root, "prepared")
    except RecsysError:
        return  # the first night: nothing to compare with (a damaged pointer failed earlier)
    # A damaged manifest refuses in one sentence: the guard is never skipped silently.
    previous = PreparedManifest.read(previous_dir)
    before = {"rows": previous.rows, "users": previous.n_users, "items": previous.n_items}
    for what, count in now.items():
        if count < min_share * before[what]:
            raise RecsysError(
                f"input {source} has {count:,} {what} after cleaning, below "
                f"prepare.min_share={min_share:.0%} of the {before[what]:,} of the previous "
                f"prepared run {previous_dir}; if the input really shrank, pass --min-share 0"
            )


@dataclass(frozen=True)
class Rejects:
    """Pass 1 over the input: rows read, rows valid, rejected rows by reason."""

    rows: int
    valid: int
    by_reason: dict[str, int]
    extra_headers: int  # header lines inside the data (a concatenated export)

    @property
    def total(self) -> int:
        return sum(self.by_reason.values())


def locate_inputs(cfg: Config) -> tuple[Located, Located | None]:
    """The ratings input (and the given test file), headers checked, before Spark starts."""
    located = locate(cfg.source.input, cfg.source.format)
    test_located = (
        locate(cfg.source.test_input, located.spec.name) if cfg.source.test_input else None
    )
    for loc in (located, test_located):
        if loc is not None:
            check_header(loc)
    if cfg.prepare.dedupe not in clean.DEDUPE_POLICIES:
        raise RecsysError(f"prepare.dedupe must be one of {clean.DEDUPE_POLICIES}")
    return located, test_located


def validated(raw: read.RawInput, lo: float, hi: float, located: Located, keys: tuple):
    """Every row with its reject reason (None: valid), cached for the passes that follow."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    checked = parse.validate(
        raw.rows, rating_min=lo, rating_max=hi, numeric_ids=located.spec.numeric_ids, keep=keys
    )
    # Keep the raw line only for rejected rows: the cache stays small on a 25M-row input.
    return checked.withColumn(S.LINE, F.when(F.col(S.REASON).isNotNull(), F.col(S.LINE))).persist(
        StorageLevel.MEMORY_AND_DISK
    )


def count_rejects(checked, located: Located, has_test: bool) -> Rejects:
    """Rows per reject reason (header lines are marked, and one per file is expected)."""
    reasons = {r[S.REASON]: r["count"] for r in checked.groupBy(S.REASON).count().collect()}
    n_valid = reasons.pop(None, 0)
    headers = reasons.pop(parse.HEADER_MARK, 0)
    extra_headers = max(headers - (2 if has_test else 1), 0)
    if extra_headers:
        reasons[S.REASON_HEADER] = extra_headers
    n_rows = n_valid + sum(reasons.values())
    if n_rows == 0:
        raise RecsysError(f"input {located.ratings} has no rating rows")
    return Rejects(n_rows, n_valid, reasons, extra_headers)


def check_rejects(
    rejects: Rejects, located: Located, max_share: float, paths: storage.RunPaths
) -> None:
    """Refuse an input with more rejected rows than ``max_share``, or none valid; a refusal keeps
    the quarantine (``storage.keep_aside``) while the staging folder goes."""
    share = rejects.total / rejects.rows
    if rejects.by_reason:
        log.warning("quarantined %d of %d rows: %s", rejects.total, rejects.rows, rejects.by_reason)
    if share > max_share:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(rejects.by_reason.items()))
        quarantine = storage.keep_aside(paths, "quarantine")
        raise RecsysError(
            f"{rejects.total} of {rejects.rows} rows ({share:.2%}) of {located.ratings} were "
            f"rejected ({detail}), above prepare.max_reject_fraction={max_share:.2%}; "
            f"see the quarantine in {quarantine}"
        )
    if rejects.valid == 0:
        raise RecsysError(f"input {located.ratings} has no valid rating rows")


def cleaned(checked, cfg: Config, keys: tuple):
    """The valid rows, one per (user, item), k-core filtered and cached; and the rows k-core
    removed. One shuffle, by user: dedupe and the leave-last window both reuse it."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    pcfg = cfg.prepare
    good = (
        checked.where(F.col(S.REASON).isNull())
        .select(S.USER_ID, S.ITEM_ID, S.RATING, S.TS, *keys)
        .repartition(cfg.spark.shuffle_partitions, S.USER_ID)
    )
    deduped = clean.dedupe(good, pcfg.dedupe, keys)
    deduped, kcore_removed = clean.k_core(deduped, pcfg.min_user_ratings, pcfg.min_item_ratings)
    return deduped.persist(StorageLevel.MEMORY_AND_DISK), kcore_removed


def user_and_item_counts(deduped) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows per user; rows and mean rating per item (driver-side, one row per id)."""
    from pyspark.sql import functions as F

    user_stats = deduped.groupBy(S.USER_ID).agg(F.count(F.lit(1)).alias(S.N_RATINGS)).toPandas()
    item_stats = (
        deduped.groupBy(S.ITEM_ID)
        .agg(F.count(F.lit(1)).alias(S.N_RATINGS), F.avg(S.RATING).alias(S.MEAN_RATING))
        .toPandas()
    )
    if user_stats.empty:
        raise RecsysError(
            "no rows are left after k-core filtering; lower prepare.min_user_ratings / "
            "prepare.min_item_ratings"
        )
    return user_stats, item_stats


def write_indices(user_stats, item_stats, items_read, staging: Path):
    """The users and items tables (contiguous indices in id order), written to ``staging``."""
    users = index.build_index(user_stats[S.USER_ID], S.USER_ID, S.USER_IDX)
    items = index.build_index(item_stats[S.ITEM_ID], S.ITEM_ID, S.ITEM_IDX)
    user_stats = user_stats.rename(columns={S.USER_ID: index.JOIN_KEY})
    item_stats = item_stats.rename(columns={S.ITEM_ID: index.JOIN_KEY})
    user_table = users.merge(user_stats, on=index.JOIN_KEY)[list(S.USERS_COLUMNS)]
    item_table = index.item_table(items, item_stats, items_read.items)
    _write_small(user_table, staging / "users")
    _write_small(item_table, staging / "items")
    return user_table, item_table


def write_ratings(spark, deduped, cfg: Config, keys: tuple, staging: Path) -> Path:
    """The rows by index, split, partitioned by split under ``staging/ratings``."""
    from pyspark.sql import functions as F

    # The id -> idx maps join as broadcasts; reading them back from the Parquet just written keeps
    # the driver from shipping them inside task closures.
    indexed = deduped
    for id_col, idx_col, table in (
        (S.USER_ID, S.USER_IDX, "users"),
        (S.ITEM_ID, S.ITEM_IDX, "items"),
    ):
        mapping = spark.read.parquet(str(staging / table)).select(id_col, idx_col)
        if dict(deduped.dtypes)[id_col] != dict(mapping.dtypes)[id_col]:
            mapping = mapping.withColumn(id_col, F.col(id_col).cast("string"))
        indexed = indexed.join(F.broadcast(mapping), id_col)
    indexed = indexed.select(
        S.USER_ID,  # kept so the leave-last window reuses the partitioning by user
        F.col(S.USER_IDX).cast("int"),
        F.col(S.ITEM_IDX).cast("int"),
        F.col(S.RATING).cast("float"),
        F.col(S.TS).cast("long"),
        *keys,
    )
    with_split = split.assign_split(indexed, cfg.prepare, user_col=S.USER_ID)
    ratings_dir = staging / "ratings"
    with_split.select(*S.RATINGS_ARROW.names, S.SPLIT).write.partitionBy(S.SPLIT).parquet(
        str(ratings_dir)
    )
    return ratings_dir


def run_prepare(cfg: Config, ds: str | None = None, run: str | None = None) -> PrepareResult:
    """Prepare one run; returns its folder and manifest. Raises ``RecsysError`` on bad input."""
    started = time.time()
    ds = storage.check_ds(ds or storage.today_utc())
    storage.check_root(cfg.root, ("prepared",))
    located, test_located = locate_inputs(cfg)
    # The run folder before Spark: an unwritable root or a full disk fails in a second.
    paths = storage.new_run(cfg.root, "prepared", ds, run)
    spark = get_spark(cfg.spark, "recsys-prepare")
    raw, keys = _load(spark, cfg, located, test_located)
    lo, hi = _rating_range(located.spec, cfg, raw.implicit)
    checked = validated(raw, lo, hi, located, keys)
    rejects = count_rejects(checked, located, test_located is not None)
    items_read = read_items(located.items, located.spec)
    quarantine = paths.staging / "quarantine"
    _write_quarantine(spark, checked, located, rejects.extra_headers, items_read, quarantine)
    try:
        check_rejects(rejects, located, cfg.prepare.max_reject_fraction, paths)
        deduped, kcore_removed = cleaned(checked, cfg, keys)
        user_stats, item_stats = user_and_item_counts(deduped)
    finally:
        checked.unpersist()
    kept = int(user_stats[S.N_RATINGS].sum())
    check_drift(
        cfg.root, located.ratings, cfg.prepare.min_share,
        rows=kept, users=len(user_stats), items=len(item_stats),
    )  # fmt: skip
    user_table, item_table = write_indices(user_stats, item_stats, items_read, paths.staging)
    ratings_dir = write_ratings(spark, deduped, cfg, keys, paths.staging)
    deduped.unpersist()

    stats = _split_stats(ratings_dir)
    if cfg.prepare.split == "return":
        stats["return"] = split.return_counts(ratings_dir)
    manifest = prepared_manifest(
        cfg, spark.version, paths, located, test_located, raw, (lo, hi), rejects, items_read,
        kept, kcore_removed, user_table, item_table, stats, started,
    )  # fmt: skip
    final = storage.commit(paths, manifest, backwards=cfg.move_latest_backwards)
    log.info("prepared %s in %.1fs", final, time.time() - started)
    return PrepareResult(final, manifest)


def prepared_manifest(
    cfg, spark_version, paths, located, test_located, raw, scale, rejects, items_read,
    kept, kcore_removed, user_table, item_table, stats, started,
) -> PreparedManifest:  # fmt: skip
    """The contract of a prepared run: what was read, kept, rejected and split, and how."""
    pcfg = cfg.prepare
    inputs = [located.ratings] + ([located.items] if located.items else [])
    if test_located is not None:
        inputs.append(test_located.ratings)
    return PreparedManifest(
        ds=paths.ds,
        run=paths.run,
        format=located.spec.name,
        input=[str(p) for p in inputs],
        input_fingerprint=fingerprint(inputs),
        files=integrity.prepared_files(paths.staging),
        implicit=raw.implicit,
        has_timestamps=raw.has_ts,
        rows_read=rejects.rows,
        rows_valid=rejects.valid,
        quarantine=Quarantine(
            total=rejects.total, by_reason=rejects.by_reason, item_rows=len(items_read.rejected)
        ),
        duplicates_removed=rejects.valid - kept - kcore_removed,
        kcore_removed=kcore_removed,
        titles_redecoded_latin1=items_read.redecoded,
        n_users=len(user_table),
        n_items=len(item_table),
        counts=stats["counts"],
        rating_scale=list(scale),
        rating_min=stats["rating_min"],
        rating_max=stats["rating_max"],
        global_mean=stats.get("global_mean"),
        user_id_type="int64" if user_table[S.USER_ID].dtype.kind == "i" else "string",
        item_id_type="int64" if item_table[S.ITEM_ID].dtype.kind == "i" else "string",
        split={
            "kind": pcfg.split,
            "test_fraction": pcfg.test_fraction,
            "val_fraction": pcfg.val_fraction,
            "leave_last": pcfg.leave_last,
            "leave_last_val": pcfg.leave_last_val,
            **({"gap": pcfg.gap, **stats["return"]} if "return" in stats else {}),
            "stratify_by": pcfg.stratify_by,
            "seed": pcfg.seed,
        },
        config=to_dict(cfg),
        versions={
            "recsys": recsys.__version__,
            "spark": spark_version,
            "python": platform.python_version(),
        },
        seconds=round(time.time() - started, 1),
    )
