"""Every column name and table schema, in one place.

The prepared tables are the contract between the Spark preparation step and everything after it
(training, evaluation, scoring), so their names and types live here and nowhere else.
"""

from __future__ import annotations

import pyarrow as pa

# Raw/original identifiers (int64 for MovieLens, string for logs whose ids are not numeric).
USER_ID = "user_id"
ITEM_ID = "item_id"
# Contiguous int32 indices assigned by prepare.
USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
RATING = "rating"
TS = "ts"
SPLIT = "split"

# Item side table.
TITLE = "title"
GENRES = "genres"  # list<string>
N_RATINGS = "n_ratings"
MEAN_RATING = "mean_rating"
# User side table.
# (user_id, user_idx, n_ratings)

# Quarantine table.
SOURCE_FILE = "source_file"
LINE = "line"  # the raw line (or the raw values joined) exactly as read
REASON = "reason"

SPLITS = ("train", "val", "test")

# Reasons a row is quarantined (the values of the ``reason`` column).
REASON_BLANK = "blank_line"
REASON_FIELDS = "wrong_field_count"
REASON_USER = "bad_user_id"
REASON_ITEM = "bad_item_id"
REASON_RATING = "bad_rating"
REASON_RANGE = "rating_out_of_range"
REASON_TS = "bad_timestamp"
REASON_HEADER = "repeated_header"
REASONS = (
    REASON_BLANK,
    REASON_FIELDS,
    REASON_USER,
    REASON_ITEM,
    REASON_RATING,
    REASON_RANGE,
    REASON_TS,
    REASON_HEADER,
)

# Arrow schemas of the prepared tables (what training and scoring read).
RATINGS_ARROW = pa.schema(
    [
        pa.field(USER_IDX, pa.int32(), nullable=False),
        pa.field(ITEM_IDX, pa.int32(), nullable=False),
        pa.field(RATING, pa.float32(), nullable=False),
        pa.field(TS, pa.int64(), nullable=False),
    ]
)


def spark_ratings_schema():
    """Spark schema of ``prepared/.../ratings`` (imported lazily: pyspark is heavy)."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField(USER_IDX, T.IntegerType(), False),
            T.StructField(ITEM_IDX, T.IntegerType(), False),
            T.StructField(RATING, T.FloatType(), False),
            T.StructField(TS, T.LongType(), False),
        ]
    )
