"""Training input: every row once per epoch, shapes, partial batches, order, sharding, errors.

The split is 100 rows in three files and eight row groups of uneven sizes (16, 16, 13 | 10, 10,
10, 10, 2 | 13), so chunks, carried rows and shard boundaries fall inside row groups. Each row's
``item_idx`` is its position in file order, which identifies it.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

tf = pytest.importorskip("tensorflow")

from recsys import schema as S  # noqa: E402
from recsys.errors import RecsysError  # noqa: E402
from recsys.train import data  # noqa: E402
from recsys.train.data import count_rows, ratings_dataset  # noqa: E402

N = 100
FILES = [(45, 16), (42, 10), (13, 13)]  # (rows, row group size)
MODES = pytest.mark.parametrize("in_memory", [False, True], ids=["stream", "memory"])


def _columns(start: int, n: int) -> dict[str, np.ndarray]:
    ids = np.arange(start, start + n)
    return {
        S.USER_IDX: (ids * 7 % 11).astype(np.int32),
        S.ITEM_IDX: ids.astype(np.int32),
        S.RATING: (ids / 10).astype(np.float32),
        S.TS: (1_000 + ids).astype(np.int64),
    }


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepared") / "split=train"
    folder.mkdir()
    start = 0
    for k, (n, group) in enumerate(FILES):
        table = pa.table(_columns(start, n), schema=S.RATINGS_ARROW)
        pq.write_table(table, folder / f"part-{k:05d}.parquet", row_group_size=group)
        start += n
    (folder / "_SUCCESS").write_text("")  # Spark's marker: not a data file
    return folder


def batches(ds) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(user_idx, item_idx, rating) of every batch, as numpy."""
    return [(x[S.USER_IDX], x[S.ITEM_IDX], y) for x, y in ds.as_numpy_iterator()]


def ids(ds) -> np.ndarray:
    """Row ids (item_idx) in the order the dataset yields them."""
    return np.concatenate([item for _, item, _ in batches(ds)])


def make(split_dir, **kwargs):
    kwargs.setdefault("global_batch_size", 8)
    kwargs.setdefault("shuffle_chunk_rows", 20)  # several chunks, rows carried between them
    return ratings_dataset(split_dir, **kwargs)


@MODES
def test_every_row_exactly_once_per_epoch(split_dir, in_memory):
    got = batches(make(split_dir, in_memory=in_memory, epochs=2))
    rows = [row for batch in got for row in zip(*batch, strict=True)]
    assert len(rows) == 2 * N
    expected = _columns(0, N)
    for epoch in (rows[:N], rows[N:]):
        assert sorted(int(item) for _, item, _ in epoch) == list(range(N))
        for user, item, rating in epoch:  # columns stay together
            assert user == expected[S.USER_IDX][item]
            assert rating[0] == expected[S.RATING][item]


@MODES
def test_shapes_and_dtypes(split_dir, in_memory):
    features, label = next(iter(make(split_dir, in_memory=in_memory)))
    assert set(features) == {S.USER_IDX, S.ITEM_IDX}
    assert features[S.USER_IDX].dtype == tf.int32 and features[S.USER_IDX].shape == (8,)
    assert features[S.ITEM_IDX].dtype == tf.int32 and features[S.ITEM_IDX].shape == (8,)
    # (b, 1), not (b,): a (b,) label would escape Keras' 1 / replicas loss scaling.
    assert label.dtype == tf.float32 and label.shape == (8, 1)
    spec = make(split_dir, in_memory=in_memory, drop_remainder=True).element_spec
    assert spec[0][S.USER_IDX].shape == (8,) and spec[1].shape == (8, 1)
    assert make(split_dir, in_memory=in_memory).element_spec[1].shape.as_list() == [None, 1]


@MODES
def test_last_partial_batch_kept_or_dropped(split_dir, in_memory):
    kept = [len(b[0]) for b in batches(make(split_dir, in_memory=in_memory, epochs=2))]
    assert kept == ([8] * 12 + [4]) * 2  # the partial batch ends each epoch
    dropped = make(split_dir, in_memory=in_memory, epochs=2, drop_remainder=True)
    assert [len(b[0]) for b in batches(dropped)] == [8] * 24


@MODES
def test_order_is_a_function_of_seed_and_epoch(split_dir, in_memory):
    first = ids(make(split_dir, in_memory=in_memory, seed=3, epochs=2))
    again = ids(make(split_dir, in_memory=in_memory, seed=3, epochs=2))
    other = ids(make(split_dir, in_memory=in_memory, seed=4, epochs=2))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first[:N], first[N:])  # a new order every epoch
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[:N], np.arange(N))


@MODES
def test_unshuffled_is_file_order(split_dir, in_memory):
    np.testing.assert_array_equal(
        ids(make(split_dir, in_memory=in_memory, shuffle=False)), np.arange(N)
    )


@MODES
def test_repeats_forever_with_a_new_order_each_epoch(split_dir, in_memory):
    ds = make(
        split_dir, in_memory=in_memory, epochs=None, drop_remainder=True, global_batch_size=10
    )
    got = np.concatenate([item for _, item, _ in batches(ds.take(35))])  # three and a half epochs
    epochs = [got[k * N : (k + 1) * N] for k in range(3)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(N))
    assert len({tuple(e) for e in epochs}) == 3


@MODES
@pytest.mark.parametrize("pipelines", [2, 3])
def test_input_pipelines_read_disjoint_shards_that_cover_the_split(split_dir, in_memory, pipelines):
    shards = []
    for pipeline in range(pipelines):
        ctx = tf.distribute.InputContext(
            num_input_pipelines=pipelines, input_pipeline_id=pipeline, num_replicas_in_sync=2
        )
        ds = make(split_dir, in_memory=in_memory, global_batch_size=16, input_context=ctx)
        got = batches(ds)
        assert max(len(b[0]) for b in got) == 8  # the per-replica batch
        shards.append(np.concatenate([item for _, item, _ in got]))
    sizes = [len(s) for s in shards]
    assert max(sizes) - min(sizes) <= 1  # balanced to one row
    counts = collections.Counter(int(i) for s in shards for i in s)
    assert sorted(counts) == list(range(N)) and set(counts.values()) == {1}


def test_feeds_mirrored_strategy(split_dir):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: make(split_dir, input_context=ctx, drop_remainder=True, epochs=None)
    )

    @tf.function
    def step(iterator):
        features, label = next(iterator)
        return strategy.run(
            lambda f, y: tf.reduce_sum(y) + tf.cast(tf.size(f[S.USER_IDX]), tf.float32),
            args=(features, label),
        )

    it = iter(dist)
    assert all(float(step(it)) > 0 for _ in range(15))  # past the first epoch's end


def test_small_split_is_held_in_memory_by_default(split_dir, caplog, monkeypatch):
    with caplog.at_level("INFO", logger="recsys.train.data"):
        make(split_dir)
    assert "in memory" in caplog.text
    monkeypatch.setattr(data, "IN_MEMORY_MAX_ROWS", 50)
    caplog.clear()
    with caplog.at_level("INFO", logger="recsys.train.data"):
        make(split_dir)
    assert "streamed from Parquet" in caplog.text


def test_count_rows(split_dir):
    assert count_rows(split_dir) == N


def test_missing_folder_is_one_clear_sentence(tmp_path):
    missing = tmp_path / "split=train"
    for call in (lambda: make(missing), lambda: count_rows(missing)):
        with pytest.raises(RecsysError, match=f"split folder {missing} does not exist"):
            call()


def test_folder_without_parquet_is_one_clear_sentence(tmp_path):
    (tmp_path / "_SUCCESS").write_text("")
    with pytest.raises(RecsysError, match=f"split folder {tmp_path} has no Parquet files"):
        make(tmp_path)


def test_wrong_column_type_names_the_file(tmp_path):
    columns = _columns(0, 5)
    columns[S.USER_IDX] = columns[S.USER_IDX].astype(np.int64)
    pq.write_table(pa.table(columns), tmp_path / "part-0.parquet")
    with pytest.raises(RecsysError, match="part-0.parquet has column 'user_idx' of type int64"):
        make(tmp_path)


def test_batch_must_divide_over_replicas(split_dir):
    ctx = tf.distribute.InputContext(num_replicas_in_sync=3)
    with pytest.raises(RecsysError, match="global_batch_size 16 does not divide over 3"):
        make(split_dir, global_batch_size=16, input_context=ctx)


def test_process_exits_with_iterators_still_running(split_dir):
    """Iterators alive at interpreter exit must not hang the process (see ``_Feed``).

    Without the exit hook this hangs in most runs: tf.data's thread is inside the generator when
    Python stops handing out the GIL.
    """
    script = textwrap.dedent(
        f"""
        from recsys.train.data import ratings_dataset
        its = []
        for in_memory in (False, True):
            ds = ratings_dataset({str(split_dir)!r}, global_batch_size=2, shuffle_chunk_rows=4,
                                 in_memory=in_memory, epochs=None)
            its.append(iter(ds))
            for _ in range(20):
                next(its[-1])
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
