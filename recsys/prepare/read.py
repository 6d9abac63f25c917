"""Reading the raw ratings with Spark: MovieLens text files and generic CSV/Parquet logs.

The edge where files become DataFrames of raw string fields (``parse.split_lines`` /
``parse.select_columns``); everything after works on those.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys import schema as S
from recsys.config import SourceConfig
from recsys.data.formats import Located
from recsys.errors import RecsysError
from recsys.prepare import parse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawInput:
    """Raw fields of every input row, and what the source could tell about itself."""

    rows: DataFrame
    implicit: bool  # no rating column: every event counts as rating 1.0
    has_ts: bool  # a timestamp column exists (temporal and leave-last splits need it)


def read_text(spark: SparkSession, located: Located) -> DataFrame:
    """A MovieLens ratings file as raw fields; header lines are marked, not dropped."""
    lines = spark.read.text(str(located.ratings)).select(
        F.lit(str(located.ratings)).alias(S.SOURCE_FILE), F.col("value").alias(S.LINE)
    )
    return parse.split_lines(lines, located.spec)


CORRUPT = "_corrupt_record"  # the raw text of a CSV row whose field count is not the header's


def read_csv(spark: SparkSession, path: str, sep: str = ",", multiline: bool = False) -> DataFrame:
    """A generic CSV log as RFC 4180 reads it, every field a string.

    Fields may be quoted (``"..."``), a quote inside one is doubled (``""``), a quoted field may
    hold the separator and, with ``multiline``, line breaks. A row with more or fewer fields than
    the header is kept whole in ``CORRUPT`` (the MovieLens formats' ``wrong_field_count``), its
    other columns as Spark filled them.
    """
    options = {"header": True, "sep": sep, "quote": '"', "escape": '"', "multiLine": multiline}
    header = spark.read.options(**options).csv(path).columns
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in header]
        + [T.StructField(CORRUPT, T.StringType())]
    )
    return spark.read.options(**options).csv(
        path, schema=schema, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT
    )


def read_table(spark: SparkSession, located: Located, src: SourceConfig) -> RawInput:
    """A generic CSV/Parquet log mapped onto the raw fields; the named columns must exist."""
    path = str(located.ratings)
    corrupt = None
    if located.spec.name == "parquet":
        table = spark.read.parquet(path)
    else:
        table, corrupt = read_csv(spark, path, src.sep, src.csv_multiline), CORRUPT
    cols = [c for c in table.columns if c != corrupt]
    if not cols:
        raise RecsysError(f"input {path} has no columns")
    for option, name in (("--user-col", src.user_col), ("--item-col", src.item_col)):
        if name not in cols:
            raise RecsysError(
                f"{path} has no column {name!r} ({option}); its columns are {', '.join(cols)}"
            )
    rating_col = src.rating_col if src.rating_col in cols else None
    if src.rating_col and rating_col is None:
        log.warning("%s has no %r column: reading it as implicit feedback", path, src.rating_col)
    ts_col = src.ts_col if src.ts_col in cols else None
    rows = parse.select_columns(
        table,
        user_col=src.user_col,
        item_col=src.item_col,
        rating_col=rating_col,
        ts_col=ts_col,
        source_file=path,
        sep=src.sep,
        corrupt_col=corrupt,
    )
    return RawInput(rows, implicit=rating_col is None, has_ts=ts_col is not None)
