"""User runs of the training input: every row once, each run one user, pads only at a run's end."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.train.runs import grouped_order, real_share, take_rows


def test_runs_hold_one_user_each_and_every_row_once():
    # Users 0..3 with 5, 1, 4 and 2 rows: runs of 2 -> 3 + 1 + 2 + 1 runs, 2 pads.
    users = np.array([0, 1, 0, 2, 0, 2, 3, 0, 2, 3, 0, 2], np.int32)
    order = grouped_order(users, 2, np.random.default_rng(0))
    assert order.shape == (14,)
    runs = order.reshape(-1, 2)
    assert sorted(order[order >= 0].tolist()) == list(range(12))
    assert np.all(runs[:, 0] >= 0)  # a run starts with a real row
    assert np.count_nonzero(order < 0) == 2 and np.all(runs[runs[:, 1] < 0, 0] >= 0)
    for first, second in runs:
        assert second < 0 or users[first] == users[second]
    assert real_share(users, 2) == pytest.approx(12 / 14)


def test_the_order_is_seeded_and_shuffles_runs_and_rows_within_users():
    users = np.repeat(np.arange(50, dtype=np.int32), 8)
    a = grouped_order(users, 4, np.random.default_rng(1))
    assert np.array_equal(a, grouped_order(users, 4, np.random.default_rng(1)))
    b = grouped_order(users, 4, np.random.default_rng(2))
    assert not np.array_equal(a, b)
    # Runs are not in user order, and rows within a user are not in file order.
    leads = users[a.reshape(-1, 4)[:, 0]]
    assert np.any(np.diff(leads) < 0)
    assert any(
        np.any(np.diff(np.sort(run)) != 1) or not np.array_equal(run, np.sort(run))
        for run in a.reshape(-1, 4)
    )


def test_take_rows_marks_pads_with_nan_ratings_and_repeats_the_runs_first_row():
    columns = [
        np.array([7, 7, 9], np.int32),
        np.array([1, 2, 3], np.int32),
        np.array([4.0, 5.0, 3.0], np.float32),
    ]
    users, items, ratings = take_rows(columns, np.array([1, 0, 2, -1]), 2)
    assert users.tolist() == [7, 7, 9, 9] and items.tolist() == [2, 1, 3, 3]
    assert ratings[:3].tolist() == [5.0, 4.0, 3.0] and np.isnan(ratings[3])
    assert columns[2].tolist() == [4.0, 5.0, 3.0]  # the source is not written to


@pytest.mark.parametrize("in_memory", [True, False])
def test_grouped_batches_of_a_split(tmp_path, in_memory):
    """Through ``ratings_dataset``: batches of whole runs, each real row once an epoch."""
    import pandas as pd

    from recsys.train.data import ratings_dataset

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(30, dtype=np.int32), rng.integers(1, 9, 30))
    frame = pd.DataFrame(
        {
            "user_idx": users,
            "item_idx": np.arange(len(users), dtype=np.int32),
            "rating": np.ones(len(users), np.float32),
            "ts": np.zeros(len(users), np.int64),
        }
    )
    (tmp_path / "split").mkdir()
    frame.to_parquet(tmp_path / "split" / "part-0.parquet")
    ds = ratings_dataset(
        tmp_path / "split", global_batch_size=8, group=4, in_memory=in_memory, shuffle_chunk_rows=64
    )
    seen = []
    for x, y in ds:
        u, i, r = x["user_idx"].numpy(), x["item_idx"].numpy(), y.numpy()[:, 0]
        assert len(u) % 4 == 0
        for run in range(0, len(u), 4):
            assert len(set(u[run : run + 4])) == 1
            assert not np.isnan(r[run])
        seen += i[~np.isnan(r)].tolist()
    assert sorted(seen) == list(range(len(users)))


def test_a_batch_that_is_not_whole_runs_is_one_sentence(tmp_path):
    from recsys.errors import RecsysError
    from recsys.train.data import ratings_dataset

    with pytest.raises(RecsysError, match="not a multiple of the user run of 3 rows"):
        ratings_dataset(tmp_path, global_batch_size=8, group=3)
