"""Reading the rating splits of a prepared run (``prepared/.../ratings/split=<name>/``).

Training, evaluation and the gate all read splits through :func:`load_split`, so they see the
same rows with the same types. pyarrow and pandas only: no TensorFlow, no Spark.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import schema as S
from recsys.errors import RecsysError

COLUMNS = (S.USER_IDX, S.ITEM_IDX, S.RATING)


def split_dir(prepared: str | Path, split: str) -> Path:
    """The folder of one split of a prepared run."""
    return Path(prepared) / "ratings" / f"split={split}"


def load_split(
    prepared: str | Path, splits: str | Sequence[str], columns: Sequence[str] = COLUMNS
) -> pd.DataFrame:
    """One split (or several, concatenated in the order given) of a prepared run, as a
    DataFrame of ``columns`` with the prepared types (user_idx, item_idx int32, ...)."""
    names = [splits] if isinstance(splits, str) else list(splits)
    tables = []
    for name in names:
        folder = split_dir(prepared, name)
        if not folder.is_dir():
            raise RecsysError(
                f"split folder {folder} does not exist; is {prepared} a complete prepared run?"
            )
        tables.append(pq.read_table(folder, columns=list(columns)))
    if not tables:
        schema = pa.schema([S.RATINGS_ARROW.field(c) for c in columns])
        return schema.empty_table().to_pandas()
    return pa.concat_tables(tables).to_pandas()
