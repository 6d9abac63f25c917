"""Benchmark the training input: Parquet streaming versus in memory, alone and feeding a step.

    python benchmarks/input_bench.py --prepared /tmp/bench-var --batch 8192 --steps 300

Resolves the latest prepared run under ``--prepared`` and reads its train split. Prints rows/s
and process CPU microseconds per row of

(a) iterating the Parquet-streaming dataset alone,
(b) iterating the in-memory dataset alone,
(c) a stand-in sparse train step (gather from a user and an item table, a dot product, a
    scatter-sub update of both tables) under ``tf.distribute.MirroredStrategy`` with
    ``distribute_datasets_from_function``, fed by each path, and
(d) the same step replaying the very batches each path produced from a tensor cache: what the
    step achieves when its input costs nothing.

The ``ratio`` line is (c) Parquet / (c) in memory, the requirement being >= 0.9. It also
measures how the batches differ (a full permutation spreads a batch over more users, which makes
the step's gathers less cache-friendly), so the ``input cost`` lines give 1 - (c) / (d) per path:
the throughput each input itself takes from training. Each round runs every case once, so load
from other processes hits them alike; figures are the best and the median of ``--repeats``
rounds (other load only ever slows a run down, so the best is the least disturbed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from recsys import schema as S  # noqa: E402
from recsys.storage import latest, read_manifest  # noqa: E402
from recsys.train.data import count_rows, ratings_dataset  # noqa: E402

DIM = 64
# ml-25m sizes, used when the manifest does not say.
USERS, ITEMS = 162541, 59047


class Clock:
    """Wall and process CPU time (all threads): CPU per row is robust to other processes' load."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, rows: int) -> tuple[float, float]:
        """(rows per second, CPU microseconds per row) since construction."""
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return rows / wall, cpu / rows * 1e6


def iterate(ds: tf.data.Dataset, steps: int, warmup: int) -> tuple[float, float]:
    """Rows/s and CPU us/row of pulling ``steps`` batches after ``warmup`` batches."""
    it = iter(ds)
    for _ in range(warmup):
        next(it)
    rows = 0
    clock = Clock()
    for _ in range(steps):
        _, rating = next(it)
        rows += int(rating.shape[0])
    return clock.rates(rows)


def replay(ds: tf.data.Dataset, batches: int) -> tf.data.Dataset:
    """The first ``batches`` batches of ``ds`` held as tensors and repeated: input at no cost."""
    taken = list(ds.take(batches).as_numpy_iterator())
    users = np.stack([x[S.USER_IDX] for x, _ in taken])  # (batches, batch)
    items = np.stack([x[S.ITEM_IDX] for x, _ in taken])  # (batches, batch)
    ratings = np.stack([y for _, y in taken])  # (batches, batch, 1)
    cached = tf.data.Dataset.from_tensor_slices(
        ({S.USER_IDX: users, S.ITEM_IDX: items}, ratings)
    ).cache()
    return cached.repeat().prefetch(tf.data.AUTOTUNE)


class StandIn:
    """A sparse train step with the shape of the real one: gather, dot, scatter-sub."""

    def __init__(self, strategy: tf.distribute.Strategy, users: int, items: int) -> None:
        self.strategy = strategy
        with strategy.scope():
            agg = tf.VariableAggregation.ONLY_FIRST_REPLICA
            self.user = tf.Variable(tf.random.normal((users, DIM), stddev=0.1), aggregation=agg)
            self.item = tf.Variable(tf.random.normal((items, DIM), stddev=0.1), aggregation=agg)

        @tf.function
        def step(iterator):
            features, rating = next(iterator)
            loss = strategy.run(self.replica_step, args=(features, rating))
            rows = strategy.run(lambda r: tf.shape(r)[0], args=(rating,))
            return strategy.reduce("SUM", loss, axis=None), strategy.reduce("SUM", rows, axis=None)

        self.step = step

    def replica_step(self, features: dict[str, tf.Tensor], rating: tf.Tensor) -> tf.Tensor:
        u_idx, i_idx = features[S.USER_IDX], features[S.ITEM_IDX]  # (batch,)
        u = tf.gather(self.user, u_idx)  # (batch, dim)
        v = tf.gather(self.item, i_idx)  # (batch, dim)
        err = tf.reduce_sum(u * v, axis=1, keepdims=True) - rating  # (batch, 1)
        lr = 0.01
        self.user.scatter_sub(tf.IndexedSlices(lr * err * v, u_idx))
        self.item.scatter_sub(tf.IndexedSlices(lr * err * u, i_idx))
        return tf.reduce_sum(err * err)

    def run(self, dist_ds, steps: int, warmup: int) -> tuple[float, float]:
        """Rows/s and CPU us/row of ``steps`` train steps fed by ``dist_ds`` after ``warmup``."""
        it = iter(dist_ds)
        for _ in range(warmup):
            self.step(it)
        rows = 0
        clock = Clock()
        for _ in range(steps):
            _, n = self.step(it)
            rows += int(n)
        return clock.rates(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prepared", default="/tmp/bench-var", help="storage root")
    parser.add_argument("--batch", type=int, default=8192, help="global batch size")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    folder = latest(args.prepared, "prepared")
    split = folder / "ratings" / "split=train"
    manifest = read_manifest(folder)
    users, items = manifest.get("n_users", USERS), manifest.get("n_items", ITEMS)
    print(f"train split     {count_rows(split):,} rows, {users:,} users x {items:,} items")
    strategy = tf.distribute.MirroredStrategy()
    print(f"strategy        MirroredStrategy, {strategy.num_replicas_in_sync} replica(s)")

    def dataset(in_memory: bool, ctx=None) -> tf.data.Dataset:
        return ratings_dataset(
            split,
            global_batch_size=args.batch,
            in_memory=in_memory,
            input_context=ctx,
            drop_remainder=True,
            epochs=None,
        )

    # Build each path once and reuse it, as training does (the in-memory load is not timed).
    started = time.perf_counter()
    alone = {"parquet": dataset(False)}
    print(f"build parquet   {time.perf_counter() - started:.2f} s")
    started = time.perf_counter()
    alone["memory"] = dataset(True)
    print(f"build memory    {time.perf_counter() - started:.2f} s (reads the split)")
    fed = {
        path: strategy.distribute_datasets_from_function(
            lambda c, m=path == "memory": dataset(m, c)
        )
        for path in alone
    }
    for path in list(alone):
        cached = replay(alone[path], args.warmup + args.steps)
        fed[f"{path} replay"] = strategy.distribute_datasets_from_function(lambda c, d=cached: d)
    model = StandIn(strategy, users, items)

    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeats):
        for path in ("memory", "parquet"):
            results.setdefault(f"alone {path}", []).append(
                iterate(alone[path], args.steps, args.warmup)
            )
        for name, dist in fed.items():
            results.setdefault(name, []).append(model.run(dist, args.steps, args.warmup))

    def show(label: str, key: str) -> tuple[float, float]:
        rates = [rate for rate, _ in results[key]]
        best, median = max(rates), statistics.median(rates)
        cpu = statistics.median(us for _, us in results[key])
        figures = f"best {best / 1e6:5.2f}  median {median / 1e6:5.2f} M rows/s"
        print(f"{label:15s} {figures}  {cpu:5.3f} CPU us/row")
        return best, median

    show("(a) parquet", "alone parquet")
    show("(b) memory", "alone memory")
    train = {path: show(f"(c) train {path[:3]}", path) for path in ("parquet", "memory")}
    free = {path: show(f"(d) replay {path[:3]}", f"{path} replay") for path in train}
    ratio = [pq / mem for pq, mem in zip(train["parquet"], train["memory"], strict=True)]
    print(f"ratio           best {ratio[0]:.3f}  median {ratio[1]:.3f}  (c) parquet / (c) memory")
    for path in train:
        cost = [1 - c / d for c, d in zip(train[path], free[path], strict=True)]
        print(f"input cost {path[:3]}  best {cost[0]:6.1%}  median {cost[1]:6.1%}  1 - (c) / (d)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
