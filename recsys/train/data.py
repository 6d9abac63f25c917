"""Training input: shuffled batches of ratings from a prepared ``ratings/split=<name>/`` folder.

The train step consumes 0.3-1M ratings per second, so nothing here touches single rows in
tf.data. Rows are shuffled and cut into whole batches in numpy, one *chunk* (about
``shuffle_chunk_rows`` rows) at a time, and a chunk crosses into TensorFlow as one
``(n_batches, batch)`` tensor that ``unbatch`` splits into batches. Two sources feed the chunks:

* **streaming** (large splits): the row groups (or row ranges of them) are shuffled per epoch and
  read with ``ParquetFile.iter_batches``, several side by side, so a chunk mixes rows of several
  row groups; the chunk is then permuted. Memory stays at a few chunks whatever the split size.
* **in memory** (small splits, or ``in_memory=True``): the three columns are read once; every epoch
  is one full permutation, sliced into chunks.

The order depends only on ``(seed, epoch, input pipeline)``, so a run is reproducible and every
epoch differs. Under ``tf.distribute`` each input pipeline reads a disjoint, contiguous range of
rows (a row group is split when a range boundary falls inside it), so pipelines stay balanced to
one row.

Usage::

    strategy = tf.distribute.MirroredStrategy()
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: ratings_dataset(folder / "ratings/split=train", global_batch_size=8192,
                                    input_context=ctx, epochs=None))

Input is a few per cent of training time at most (measured: docs/tuning.md).

A streaming shuffle is only as good as the layout allows: rows that arrive sorted (by user, say)
stay clustered within ``shuffle_chunk_rows``; raise it, or use ``in_memory=True`` when the split
fits in memory.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.train import parquet_rows
from recsys.train.parquet_rows import COLUMNS
from recsys.train.runs import Columns, grouped_order, take_rows

log = logging.getLogger(__name__)

# Below this many rows (per input pipeline) the split is held in memory (600 MB of columns): a
# full permutation per epoch shuffles better than a streaming window over files grouped by user.
IN_MEMORY_MAX_ROWS = 50_000_000


def _epoch_numbers(epochs: int | None) -> Iterator[int]:
    return itertools.count() if epochs is None else iter(range(epochs))


def _memory_epochs(
    columns: Columns,
    chunk_rows: int,
    rng: Callable[[int], np.random.Generator | None],
    epochs: int | None,
    group: int = 1,
) -> Iterator[Iterator[Columns]]:
    """Each epoch of in-memory rows as chunks: a full permutation (or file order) sliced.

    A full shuffle of a large split takes seconds (docs/tuning.md). Numpy's
    ``shuffle`` and sorts release the GIL, so the next epoch's order is drawn in a thread once
    this epoch is half consumed, and the epoch boundary does not stall the train step.
    """
    n = len(columns[0])

    def draw(epoch: int) -> np.ndarray | None:
        generator = rng(epoch)
        if generator is None:
            return None
        if group > 1:
            return grouped_order(columns[0], group, generator)
        order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)  # (n,)
        generator.shuffle(order)
        return order

    def chunks(epoch: int, order: np.ndarray | None) -> Iterator[Columns]:
        nonlocal upcoming
        starts = range(0, n if order is None else len(order), chunk_rows)
        for k, start in enumerate(starts):
            if k == len(starts) // 2 and order is not None and epoch + 1 != epochs:
                upcoming = pool.submit(draw, epoch + 1)
            if order is None:
                yield [c[start : start + chunk_rows] for c in columns]
            else:
                take = order[start : start + chunk_rows]  # (chunk,)
                yield take_rows(columns, take, group)

    pool = ThreadPoolExecutor(1, thread_name_prefix="recsys-shuffle")
    upcoming: Future | None = None
    try:
        for epoch in _epoch_numbers(epochs):
            order = upcoming.result() if upcoming is not None else draw(epoch)
            upcoming = None
            yield chunks(epoch, order)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


Element = tuple[dict[str, np.ndarray], np.ndarray]


def _whole_batches(
    chunks: Iterator[Columns],
    batch: int,
    drop_remainder: bool,
    rng: np.random.Generator | None,
    group: int = 1,
) -> Iterator[Element]:
    """Permute each chunk (when ``rng`` is given; in user runs of ``group``, see
    ``grouped_order``) and emit it as ``(n_batches, batch)`` arrays.

    Rows that do not fill a batch are carried into the next chunk, so only the epoch's last batch
    can be partial; it is emitted as ``(1, rest)`` unless ``drop_remainder``. ``batch`` is a
    multiple of ``group``, so carried rows are whole runs.
    """
    carry: Columns | None = None
    for chunk in chunks:
        if rng is not None and group > 1:
            chunk = take_rows(chunk, grouped_order(chunk[0], group, rng), group)
        elif rng is not None:
            perm = rng.permutation(len(chunk[0]))  # (n,)
            chunk = [c[perm] for c in chunk]
        if carry is not None:
            chunk = [np.concatenate(pair) for pair in zip(carry, chunk, strict=True)]
        n = len(chunk[0])
        k = n // batch
        if k:
            yield _element(chunk, k, batch)
        carry = [c[k * batch :] for c in chunk]
    if carry is not None and len(carry[0]) and not drop_remainder:
        yield _element(carry, 1, len(carry[0]))


def _element(columns: Columns, k: int, batch: int) -> Element:
    users, items, ratings = (c[: k * batch] for c in columns)
    features = {S.USER_IDX: users.reshape(k, batch), S.ITEM_IDX: items.reshape(k, batch)}
    return features, ratings.reshape(k, batch, 1)  # (k, batch), (k, batch, 1)


class _Feed:
    """All epochs' elements for ``from_generator``, ending early when the interpreter exits.

    tf.data runs the generator in its own threads and needs the GIL for every call. An iterator
    still alive at interpreter shutdown is destroyed after Python has stopped handing the GIL to
    other threads, so a call in flight can never finish and the process hangs forever. The
    ``atexit`` hook (which runs before that point) makes every feed end its sequence and waits
    until no call is in flight, so the pipelines wind down while they still can.
    """

    _exiting = threading.Event()
    _lock = threading.Lock()
    _busy = 0  # generator calls in flight, over all feeds
    _hooked = False

    def __init__(self, elements: Iterator[Element]) -> None:
        self._elements = elements
        with _Feed._lock:
            if not _Feed._hooked:
                atexit.register(_Feed._wind_down)
                _Feed._hooked = True

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> Element:
        with _Feed._lock:
            _Feed._busy += 1
        try:
            if _Feed._exiting.is_set():
                raise StopIteration
            return next(self._elements)
        finally:
            with _Feed._lock:
                _Feed._busy -= 1

    @staticmethod
    def _wind_down(timeout: float = 10.0) -> None:
        _Feed._exiting.set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with _Feed._lock:
                if _Feed._busy == 0:
                    break
            time.sleep(0.01)
        time.sleep(0.05)  # tf.data calls the generator's finalizer right after its last element


def _dataset(
    elements: Callable[[], Iterator[Element]], batch: int, drop_remainder: bool, skip: int = 0
) -> tf.data.Dataset:
    """Cross into TensorFlow a chunk at a time, then split the chunks into batches."""
    width = batch if drop_remainder else None
    signature = (
        {
            S.USER_IDX: tf.TensorSpec((None, width), tf.int32),
            S.ITEM_IDX: tf.TensorSpec((None, width), tf.int32),
        },
        tf.TensorSpec((None, width, 1), tf.float32),
    )
    # One generator runs all epochs; every new iterator starts again at epoch 0.
    ds = tf.data.Dataset.from_generator(lambda: _Feed(elements()), output_signature=signature)
    # One chunk ahead: the generator reads and permutes the next chunk in tf.data's thread while
    # the current one is being consumed.
    ds = ds.prefetch(1)
    ds = ds.unbatch()  # (k, batch) -> k elements of (batch,): per batch, never per row
    if skip:
        ds = ds.skip(skip)
    return ds.prefetch(tf.data.AUTOTUNE)


def _replica_batch(
    global_batch_size: int,
    shuffle_chunk_rows: int,
    epochs: int | None,
    seed: int,
    input_context: tf.distribute.InputContext | None,
    group: int,
) -> tuple[int, int, int]:
    """``(pipeline, pipelines, batch per replica)`` of ``ratings_dataset``'s arguments, each
    checked in one sentence."""
    if global_batch_size < 1:
        raise RecsysError(f"global_batch_size must be at least 1, got {global_batch_size}")
    if shuffle_chunk_rows < 1:
        raise RecsysError(f"shuffle_chunk_rows must be at least 1, got {shuffle_chunk_rows}")
    if epochs is not None and epochs < 0:
        raise RecsysError(f"epochs must be None (forever) or at least 0, got {epochs}")
    if seed < 0:
        raise RecsysError(f"the shuffle seed must be non-negative, got {seed}")
    pipeline, pipelines, batch = 0, 1, global_batch_size
    if input_context is not None:
        pipeline = input_context.input_pipeline_id
        pipelines = input_context.num_input_pipelines
        replicas = input_context.num_replicas_in_sync
        if global_batch_size % replicas:
            raise RecsysError(
                f"global_batch_size {global_batch_size} does not divide over {replicas} "
                f"replicas; choose a multiple of {replicas}"
            )
        batch = input_context.get_per_replica_batch_size(global_batch_size)
    if group < 1 or batch % group:
        raise RecsysError(
            f"the batch of {batch} rows per replica is not a multiple of the user run of {group} "
            "rows (train.user_group); choose a batch that is"
        )
    return pipeline, pipelines, batch


def _orders(seed: int, pipeline: int, shuffle: bool) -> Callable[[int], np.random.Generator | None]:
    """The generator of each epoch's order: a function of ``(seed, epoch, pipeline)`` only."""

    def rng(epoch: int) -> np.random.Generator | None:
        return np.random.default_rng([seed, epoch, pipeline]) if shuffle else None

    return rng


def _memory_elements(split, pieces, rng, epochs, group, batch, drop_remainder, chunk_rows):
    """The elements of a split held in memory: one full permutation per epoch."""
    columns = parquet_rows.read_pieces(split, pieces, COLUMNS)
    # Chunks of whole batches, so that no rows are carried (and copied) between chunks.
    chunk = max(chunk_rows // batch, 1) * batch

    def elements() -> Iterator[Element]:
        for chunks in _memory_epochs(columns, chunk, rng, epochs, group):
            yield from _whole_batches(chunks, batch, drop_remainder, None)

    return elements


def _stream_elements(split, pieces, rng, epochs, group, batch, drop_remainder, chunk_rows):
    """The elements of a split streamed from Parquet, a shuffled chunk at a time."""

    def elements() -> Iterator[Element]:
        for epoch in _epoch_numbers(epochs):
            generator = rng(epoch)
            chunks = parquet_rows.stream_chunks(split, pieces, chunk_rows, generator)
            yield from _whole_batches(chunks, batch, drop_remainder, generator, group)

    return elements


def ratings_dataset(
    split_dir: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    global_batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    in_memory: bool | None = None,
    shuffle_chunk_rows: int = 1 << 20,
    input_context: tf.distribute.InputContext | None = None,
    drop_remainder: bool = False,
    epochs: int | None = 1,
    group: int = 1,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """Batches ``({"user_idx": (b,), "item_idx": (b,)}, rating (b, 1))`` from a split folder.

    The label is ``(b, 1)``, not ``(b,)``, on purpose: Keras losses average over the last axis, so
    a ``(b,)`` label collapses to one scalar per replica, which Keras then leaves unscaled by
    ``1 / num_replicas``; the gradients would be summed, not averaged, over replicas.

    Args:
        split_dir: A ``ratings/split=<name>/`` folder of Parquet files (local path or URI).
        global_batch_size: Batch size summed over all replicas; each replica gets
            ``input_context.get_per_replica_batch_size(global_batch_size)``.
        shuffle: Shuffle rows every epoch; without it rows come in file order (for evaluation).
        seed: Non-negative; the order is a function of ``(seed, epoch, input pipeline)`` only.
        in_memory: Hold the columns in memory and permute fully every epoch; ``None`` decides by
            size (fewer than ``IN_MEMORY_MAX_ROWS`` rows per input pipeline).
        shuffle_chunk_rows: Rows permuted together when streaming, and rows per tensor handed
            to tf.data on both paths. Larger shuffles better and costs memory (12 bytes a row,
            about three chunks live).
        input_context: From ``strategy.distribute_datasets_from_function``; this pipeline then
            reads its own contiguous ``1 / num_input_pipelines`` of the rows.
        drop_remainder: Drop each epoch's last partial batch (and give the batch dimension a
            static size).
        epochs: Number of passes, each reshuffled; ``None`` repeats forever.
        group: Shuffle each user's rows into runs of this many rows, side by side in a batch
            (``grouped_order``; padded runs carry NaN ratings). Needs ``shuffle``; the batch per
            replica must be a multiple of it.
        skip_batches: Batches to leave out at the start: a resumed run skips what the epochs
            before its backup read, so it sees the batches an uninterrupted run would.

    Returns:
        A ``tf.data.Dataset`` that is deterministic for a given seed.

    Raises:
        RecsysError: The folder is missing, holds no Parquet files, or lacks a column.
    """
    pipeline, pipelines, batch = _replica_batch(
        global_batch_size, shuffle_chunk_rows, epochs, seed, input_context, group
    )
    group = group if shuffle else 1

    split = parquet_rows.open_split(split_dir)
    pieces = parquet_rows.shard(
        parquet_rows.plan(split, COLUMNS, strict_types=True), pipeline, pipelines
    )
    rows = sum(p.num_rows for p in pieces)
    if in_memory is None:
        in_memory = rows < IN_MEMORY_MAX_ROWS
    log.info(
        "input %s: %d rows in %d pieces for pipeline %d/%d, %s, batch %d per replica",
        split.name,
        rows,
        len(pieces),
        pipeline,
        pipelines,
        "in memory" if in_memory else "streamed from Parquet",
        batch,
    )

    make = _memory_elements if in_memory else _stream_elements
    rng = _orders(seed, pipeline, shuffle)
    elements = make(split, pieces, rng, epochs, group, batch, drop_remainder, shuffle_chunk_rows)
    return _dataset(elements, batch, drop_remainder, skip_batches)


def count_rows(split_dir: str | os.PathLike) -> int:
    """Rows of a split, from the Parquet footers alone (no data is read)."""
    split = parquet_rows.open_split(split_dir)
    return sum(parquet_rows.parquet(split, path).metadata.num_rows for path in split.files)
