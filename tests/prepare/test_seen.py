"""``prepared/.../seen/``: each user's sorted items and rows per split, cut into files."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import schema as S
from recsys.prepare.seen import read_seen, write_seen


def _ratings(folder, split, pairs):
    part = folder / f"split={split}"
    part.mkdir(parents=True)
    users, items = zip(*pairs, strict=True) if pairs else ((), ())
    table = pa.table(
        {S.USER_IDX: pa.array(users, pa.int32()), S.ITEM_IDX: pa.array(items, pa.int32())}
    )
    pq.write_table(table, part / "part-0.parquet")


def test_lists_are_sorted_per_user_with_counts_per_split(tmp_path):
    ratings = tmp_path / "ratings"
    _ratings(ratings, "train", [(2, 7), (0, 5), (0, 1), (1, 3), (2, 0)])
    _ratings(ratings, "val", [(1, 9)])
    _ratings(ratings, "test", [(0, 4), (3, 2)])  # user 3 has no training row
    write_seen(ratings, tmp_path / "seen", n_users=4, files=3)
    files = sorted(p.name for p in (tmp_path / "seen").iterdir())
    assert files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    table = pq.read_table(tmp_path / "seen").to_pandas().sort_values(S.USER_IDX)
    assert table[S.USER_IDX].tolist() == [0, 1, 2, 3]
    assert [list(x) for x in table[S.ITEM_IDX]] == [[1, 4, 5], [3, 9], [0, 7], [2]]
    assert table["n_train"].tolist() == [2, 1, 2, 0]
    assert table["n_val"].tolist() == [0, 1, 0, 0]
    assert table["n_test"].tolist() == [1, 0, 0, 1]
    offsets, items = read_seen(tmp_path / "seen")
    assert offsets.tolist() == [0, 3, 5, 7, 8]
    assert items.tolist() == [1, 4, 5, 3, 9, 0, 7, 2]


def test_more_files_than_users_writes_one_per_user(tmp_path):
    ratings = tmp_path / "ratings"
    _ratings(ratings, "train", [(0, 1), (1, 0)])
    write_seen(ratings, tmp_path / "seen", n_users=2, files=8)
    assert len(list((tmp_path / "seen").iterdir())) == 2
    offsets, items = read_seen(tmp_path / "seen")
    assert np.array_equal(offsets, [0, 1, 2]) and np.array_equal(items, [1, 0])
