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

# Item side table (prepared/.../items/).
TITLE = "title"
GENRES = "genres"  # list<string>
N_RATINGS = "n_ratings"
MEAN_RATING = "mean_rating"
ITEMS_COLUMNS = (ITEM_ID, ITEM_IDX, TITLE, GENRES, N_RATINGS, MEAN_RATING)
# User side table (prepared/.../users/).
USERS_COLUMNS = (USER_ID, USER_IDX, N_RATINGS)

# Quarantine table (prepared/.../quarantine/).
SOURCE_FILE = "source_file"
LINE = "line"  # the raw line (or the raw values joined) exactly as read
REASON = "reason"
QUARANTINE_COLUMNS = (SOURCE_FILE, LINE, REASON)

# The recommendations table (recommendations/.../table/): each user's top N unseen items.
RANK = "rank"  # 1..N
SCORE = "score"  # the model's score (a popular row: the item's training count)
SOURCE = "source"  # who chose the row: SOURCE_MODEL, or SOURCE_POPULAR for users it never saw
MODEL_VERSION = "model_version"
SOURCE_MODEL, SOURCE_POPULAR = "model", "popular"
RECOMMENDATIONS_COLUMNS = (USER_ID, RANK, ITEM_ID, SCORE, SOURCE, MODEL_VERSION, TITLE)

# The similar_items table (similar_items/.../table/): each item's nearest items (SCORE: cosine).
SIMILAR_ITEM_ID = "similar_item_id"
SIMILAR_TITLE = "similar_title"
SIMILAR_ITEMS_COLUMNS = (ITEM_ID, RANK, SIMILAR_ITEM_ID, SCORE, TITLE, SIMILAR_TITLE, MODEL_VERSION)

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
REASON_NON_FINITE = "non_finite_rating"  # +inf or -inf
REASON_ABSURD = "absurd_rating"  # finite but beyond MAX_ABS_RATING: an overflow, not a rating
REASON_ID_LONG = "id_too_long"  # a user or item id longer than MAX_ID_CHARS
# No rating scale of any log is near a million; beyond it a value broke on its way to the log.
MAX_ABS_RATING = 1e6
# Ids are keys people and stores read (a lookup, a Redis key); 256 characters hold any UUID,
# e-mail or URL-style id, and keep one hostile row from bloating every index.
MAX_ID_CHARS = 256
REASONS = (
    REASON_BLANK,
    REASON_FIELDS,
    REASON_USER,
    REASON_ITEM,
    REASON_RATING,
    REASON_RANGE,
    REASON_TS,
    REASON_HEADER,
    REASON_NON_FINITE,
    REASON_ABSURD,
    REASON_ID_LONG,
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
