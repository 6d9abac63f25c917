"""load_split: the prepared types, splits concatenated in order, one sentence for a missing one."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.splits import load_split


@pytest.fixture
def prepared(tmp_path):
    for split, items in (("train", [0, 1, 2]), ("val", [3])):
        folder = tmp_path / "ratings" / f"split={split}"
        folder.mkdir(parents=True)
        n = len(items)
        columns = {
            S.USER_IDX: np.zeros(n, np.int32),
            S.ITEM_IDX: np.array(items, np.int32),
            S.RATING: np.full(n, 4.0, np.float32),
            S.TS: np.arange(1_000, 1_000 + n, dtype=np.int64),
        }
        pq.write_table(pa.table(columns, schema=S.RATINGS_ARROW), folder / "part-0.parquet")
    return tmp_path


def test_one_split_with_its_types(prepared):
    train = load_split(prepared, "train")
    assert list(train) == [S.USER_IDX, S.ITEM_IDX, S.RATING]
    assert train[S.ITEM_IDX].tolist() == [0, 1, 2] and train[S.ITEM_IDX].dtype == np.int32


def test_several_splits_in_order_and_chosen_columns(prepared):
    rows = load_split(prepared, ["val", "train"], columns=(S.ITEM_IDX, S.TS))
    assert list(rows) == [S.ITEM_IDX, S.TS] and rows[S.ITEM_IDX].tolist() == [3, 0, 1, 2]
    assert rows[S.TS].dtype == np.int64
    assert load_split(prepared, [], columns=(S.ITEM_IDX,)).empty


def test_missing_split_is_one_clear_sentence(prepared):
    missing = prepared / "ratings" / "split=test"
    with pytest.raises(RecsysError, match=f"split folder {missing} does not exist"):
        load_split(prepared, "test")
