"""Raw rows -> typed rows with a rejection reason. Pure ``DataFrame -> DataFrame`` functions.

Every input row survives this step: either with typed ``user_id``, ``item_id``, ``rating``, ``ts``
and a null ``reason``, or with its raw line and the first reason it failed. Spark 4 runs in ANSI
mode, where a plain ``cast`` of a bad string raises, so every conversion is a ``try_cast``.
"""

from __future__ import annotations

import re

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys import schema as S
from recsys.data.formats import FormatSpec

RAW_USER, RAW_ITEM, RAW_RATING, RAW_TS = "_user", "_item", "_rating", "_ts"
N_FIELDS = "_n_fields"
EXPECTED_FIELDS = 4
HEADER_FIELDS = -1  # N_FIELDS of a line equal to the format's header
WRONG_FIELDS = -2  # N_FIELDS of a generic CSV row whose field count differs from its header's
# Reason given to header lines while counting; the job keeps one header per file and quarantines
# any repeated one as ``repeated_header``.
HEADER_MARK = "_header"


def split_lines(lines: DataFrame, spec: FormatSpec) -> DataFrame:
    """Split MovieLens text lines (``source_file``, ``line``) into raw string fields.

    Header lines are marked (``N_FIELDS`` = -1) rather than filtered, so counting them costs no
    extra pass over the file.
    """
    parts = F.split(F.col(S.LINE), re.escape(spec.sep))
    n_fields = F.when(F.trim(S.LINE) == "", F.lit(0))
    if spec.header:
        is_header = F.trim(F.regexp_replace(S.LINE, "^\ufeff", "")) == spec.header
        n_fields = n_fields.when(is_header, F.lit(HEADER_FIELDS))
    return lines.select(
        S.SOURCE_FILE,
        S.LINE,
        n_fields.otherwise(F.size(parts)).alias(N_FIELDS),
        *(
            F.trim(F.get(parts, i)).alias(name)
            for i, name in enumerate((RAW_USER, RAW_ITEM, RAW_RATING, RAW_TS))
        ),
    )


def select_columns(
    table: DataFrame,
    *,
    user_col: str,
    item_col: str,
    rating_col: str | None,
    ts_col: str | None,
    source_file: str,
    sep: str = ",",
    corrupt_col: str | None = None,
) -> DataFrame:
    """Map a generic log's named columns onto the raw fields (all as strings).

    A missing rating column means implicit feedback (rating 1.0 later); a missing timestamp
    column gives ``ts`` 0. The raw ``line`` is the row's values joined by ``sep``, or, for a row
    the CSV reader kept whole in ``corrupt_col`` (a wrong field count), that text.
    """
    cols = [c for c in table.columns if c != corrupt_col]

    def text(name: str | None) -> Column:
        if not name:
            return F.lit(None).cast("string")
        dtype = dict(table.dtypes)[name]
        c = F.col(f"`{name}`")
        if dtype.startswith("timestamp"):
            c = F.unix_seconds(c.cast("timestamp"))
        return F.trim(c.cast("string"))

    line = F.concat_ws(sep, *(F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("")) for c in cols))
    n_fields = F.lit(EXPECTED_FIELDS)
    if corrupt_col:
        broken = F.col(f"`{corrupt_col}`").isNotNull()
        line = F.when(broken, F.col(f"`{corrupt_col}`")).otherwise(line)
        n_fields = F.when(broken, F.lit(WRONG_FIELDS)).otherwise(n_fields)
    return table.select(
        F.lit(source_file).alias(S.SOURCE_FILE),
        line.alias(S.LINE),
        n_fields.alias(N_FIELDS),
        text(user_col).alias(RAW_USER),
        text(item_col).alias(RAW_ITEM),
        (text(rating_col) if rating_col else F.lit("1").cast("string")).alias(RAW_RATING),
        (text(ts_col) if ts_col else F.lit("0").cast("string")).alias(RAW_TS),
    )


def _id(col: str, numeric: bool) -> Column:
    raw = F.col(col)
    if numeric:
        return raw.try_cast("bigint")
    return F.when(raw.isNull() | (raw == ""), F.lit(None).cast("string")).otherwise(raw)


def _timestamp(col: str, numeric_only: bool) -> Column:
    raw = F.col(col)
    seconds = raw.try_cast("bigint")
    if numeric_only:
        return seconds
    # Generic logs may carry ISO timestamps ("2024-05-01 12:00:00", "2024-05-01T12:00:00Z").
    parsed = F.unix_seconds(F.try_to_timestamp(raw))
    return F.coalesce(seconds, parsed)


def validate(
    raw: DataFrame,
    *,
    rating_min: float,
    rating_max: float,
    numeric_ids: bool,
    keep: tuple[str, ...] = (),
) -> DataFrame:
    """Type the raw fields and attach the first reason each row fails (null when it is valid).

    Non-finite ratings, ratings beyond ``schema.MAX_ABS_RATING`` and ids longer than
    ``schema.MAX_ID_CHARS`` have reasons of their own, whatever scale the log declares.

    Returns ``source_file, line, user_id, item_id, rating (double), ts (long), reason`` and the
    ``keep`` columns unchanged.
    """
    user = _id(RAW_USER, numeric_ids)
    item = _id(RAW_ITEM, numeric_ids)
    rating = F.col(RAW_RATING).try_cast("double")
    ts = _timestamp(RAW_TS, numeric_ids)
    too_long = (F.length(RAW_USER) > S.MAX_ID_CHARS) | (F.length(RAW_ITEM) > S.MAX_ID_CHARS)
    reason = (
        F.when(F.col(N_FIELDS) == HEADER_FIELDS, F.lit(HEADER_MARK))
        .when(F.col(N_FIELDS) == 0, F.lit(S.REASON_BLANK))
        .when(F.col(N_FIELDS) != EXPECTED_FIELDS, F.lit(S.REASON_FIELDS))
        .when(too_long, F.lit(S.REASON_ID_LONG))
        .when(user.isNull(), F.lit(S.REASON_USER))
        .when(item.isNull(), F.lit(S.REASON_ITEM))
        .when(rating.isNull() | F.isnan(rating), F.lit(S.REASON_RATING))
        .when(F.abs(rating) == F.lit(float("inf")), F.lit(S.REASON_NON_FINITE))
        .when(F.abs(rating) > F.lit(S.MAX_ABS_RATING), F.lit(S.REASON_ABSURD))
        .when((rating < F.lit(rating_min)) | (rating > F.lit(rating_max)), F.lit(S.REASON_RANGE))
        .when(ts.isNull() | (ts < 0), F.lit(S.REASON_TS))
    )
    return raw.select(
        S.SOURCE_FILE,
        S.LINE,
        user.alias(S.USER_ID),
        item.alias(S.ITEM_ID),
        rating.alias(S.RATING),
        ts.alias(S.TS),
        reason.alias(S.REASON),
        *keep,
    )
