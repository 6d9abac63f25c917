"""NCF scoring: our numpy kernel (full Spark job, and a 1% user sample) against Keras model.predict.

    python benchmarks/score_ncf_bench.py [--job-root /tmp/bench-1m] [--sample-root /tmp/bench-var]
        [--fraction 0.01] [--dim 64] [--hidden 128 64] [--skip-job] [--skip-sample]

The model is NCF (``recsys.train.models.ncf.NCF``: dim 64, dense layers 128-64, ranking objective)
with random weights (the cost does not depend on them), built in Keras and exported with
``export_arrays``, the arrays the scoring job reads, so both sides score the same model (their
largest difference is printed as a check).

1. The full job on --job-root (every user x every item, top-N of unseen items):
   ``spark-submit --master local[2] jobs/score.py``; wall time, pairs/s, peak memory. The ml-1m
   shape by default: a full NCF pass over the ml-25m shape (162k x 59k = 9.6e9 pairs x ~17k
   flops) is hours on 2 cores.
2. On --sample-root (the ml-25m shape by default), a random --fraction of users (seed 0) x every
   item, top-N of unseen items, both sides timed on the same users:
   a. kernel: ``top_n_block`` on blocks of 1024 users (the job's Arrow batch), 2 processes (both
      cores) with BLAS pinned to one thread each, as the job's Python workers; no Spark;
   b. Keras: ``model.predict(batch_size=65536)`` on the cross join, built per chunk of users (so
      memory stays bounded), then the same seen-item mask and top-N selection (``top_k_rows``);
      TensorFlow uses both cores. Traced once before the clock starts.
   Each figure is printed with the 1-minute load average read just before it (shared machine).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from score_bench import load, memory_line, spark_job  # this folder

from recsys import schema as S
from recsys import storage
from recsys.manifests import PreparedManifest


def keras_model(prepared: Path, dim: int, hidden: tuple[int, ...]):
    """A random NCF of the prepared run's shape (Keras), seeded."""
    from recsys.train.models.build import model_class

    m = PreparedManifest.read(prepared)
    model = model_class("ncf")(
        m.n_users, m.n_items, dim=dim, hidden=hidden, objective="ranking", init_scale=0.3
    )
    model.build()
    return model


def commit_model(root: str, prepared: Path, arrays: dict[str, np.ndarray]) -> str:
    """The exported arrays as a model run of ``root`` (what ``recsys score`` reads)."""
    m = PreparedManifest.read(prepared)
    paths = storage.new_run(root, "models", "2000-01-01")
    np.savez(paths.staging / "arrays.npz", **arrays)
    storage.commit(
        paths,
        {
            "ds": "2000-01-01",
            "run": paths.run,
            "model_version": f"ncf-bench-{paths.run}",
            "family": "ncf",
            "prepared": {"ds": m.ds, "run": m.run, "path": str(prepared)},
        },
    )
    return paths.run


def sample(prepared: Path, fraction: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """A random ``fraction`` of users (seed 0, sorted) and each one's seen items (every split)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    m = PreparedManifest.read(prepared)
    rng = np.random.default_rng(0)
    k = max(1, round(m.n_users * fraction))
    users = np.sort(rng.choice(m.n_users, size=k, replace=False)).astype(np.int64)
    ratings = pads.dataset(prepared / "ratings", format="parquet", partitioning="hive")
    table = ratings.to_table(
        columns=[S.USER_IDX, S.ITEM_IDX], filter=pc.field(S.USER_IDX).isin(users)
    ).to_pandas()
    by_user = table.groupby(S.USER_IDX)[S.ITEM_IDX].apply(np.asarray)
    return users, [by_user.get(u, np.array([], np.int64)).astype(np.int64) for u in users]


def _kernel_part(args) -> float:
    """Top-N of one half of the sample, as a job worker does it: BLAS on one thread."""
    from threadpoolctl import threadpool_limits

    from recsys.artifact import Scorer
    from recsys.score.topn import top_n_block

    path, users, seen, top, block = args
    scorer = Scorer.load(path)  # once per worker in the job too; not timed
    with threadpool_limits(1, user_api="blas"):
        started = time.perf_counter()
        for s in range(0, len(users), block):
            top_n_block(scorer, users[s : s + block], seen[s : s + block], top)
        return time.perf_counter() - started


def kernel_sample(path: Path, users, seen, top: int, block: int = 1024) -> float:
    """Seconds for the sample on both cores: two spawned processes, each half the users."""
    half = len(users) // 2
    parts = [
        (str(path), users[:half], seen[:half], top, block),
        (str(path), users[half:], seen[half:], top, block),
    ]
    ctx = multiprocessing.get_context("spawn")  # the parent has TensorFlow loaded: never fork
    with ProcessPoolExecutor(2, mp_context=ctx) as pool:
        return max(pool.map(_kernel_part, parts))


def keras_sample(model, users, seen, n_items: int, top: int, batch: int, chunk: int) -> float:
    """Seconds for ``model.predict`` on the cross join, chunk by chunk, plus the same top-N."""
    from recsys.topk import top_k_rows

    items = np.arange(n_items, dtype=np.int32)
    per_chunk = max(1, chunk // n_items)
    warm = {S.USER_IDX: np.zeros(batch, np.int32), S.ITEM_IDX: np.zeros(batch, np.int32)}
    model.predict(warm, batch_size=batch, verbose=0)  # trace outside the clock
    started = time.perf_counter()
    for s in range(0, len(users), per_chunk):
        u = users[s : s + per_chunk].astype(np.int32)
        x = {S.USER_IDX: np.repeat(u, n_items), S.ITEM_IDX: np.tile(items, len(u))}
        scores = model.predict(x, batch_size=batch, verbose=0)[:, 0].reshape(len(u), n_items)
        for row, seen_items in enumerate(seen[s : s + per_chunk]):
            scores[row, seen_items] = -np.inf
        top_k_rows(scores, top)
    return time.perf_counter() - started


def check_agreement(model, arrays, users: np.ndarray, n_items: int) -> float:
    """Largest |kernel - Keras| over two users x every item (they must score the same model)."""
    from recsys.artifact import Scorer

    u = users[:2].astype(np.int32)
    x = {
        S.USER_IDX: np.repeat(u, n_items),
        S.ITEM_IDX: np.tile(np.arange(n_items, dtype=np.int32), 2),
    }
    keras_scores = model.predict(x, batch_size=65536, verbose=0)[:, 0].reshape(2, n_items)
    return float(np.abs(Scorer(arrays).score_block(u) - keras_scores).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--job-root", default="/tmp/bench-1m")
    parser.add_argument("--sample-root", default="/tmp/bench-var")
    parser.add_argument("--fraction", type=float, default=0.01)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--batch", type=int, default=65536, help="model.predict batch size")
    parser.add_argument("--chunk", type=int, default=4_000_000, help="pairs per predict call")
    parser.add_argument("--driver-memory", default="4g")
    parser.add_argument("--skip-job", action="store_true")
    parser.add_argument("--skip-sample", action="store_true")
    args = parser.parse_args()
    hidden = tuple(args.hidden)
    print(f"NCF dim {args.dim}, layers {'-'.join(map(str, hidden))}, top {args.top}")

    if not args.skip_job:
        prepared = storage.latest(args.job_root, "prepared")
        m = PreparedManifest.read(prepared)
        pairs = m.n_users * m.n_items
        run = commit_model(
            args.job_root, prepared, keras_model(prepared, args.dim, hidden).export_arrays()
        )
        before = load()
        seconds, peaks = spark_job(args.job_root, run, args.top, args.driver_memory)
        print(
            f"full job, {m.n_users:,} users x {m.n_items:,} items = {pairs:,} pairs "
            f"(spark-submit local[2]): {seconds:.1f} s, {pairs / seconds / 1e6:.2f} M pairs/s "
            f"[load {before:.2f}]\n  {memory_line(peaks)}"
        )

    if not args.skip_sample:
        prepared = storage.latest(args.sample_root, "prepared")
        m = PreparedManifest.read(prepared)
        users, seen = sample(prepared, args.fraction)
        pairs = len(users) * m.n_items
        model = keras_model(prepared, args.dim, hidden)
        arrays = model.export_arrays()
        run = commit_model(args.sample_root, prepared, arrays)
        path = storage.resolve(args.sample_root, "models", "2000-01-01", run) / "arrays.npz"
        print(
            f"sample: {len(users):,} users ({args.fraction:.0%} of {m.n_users:,}) x "
            f"{m.n_items:,} items = {pairs:,} pairs; max |kernel - keras| = "
            f"{check_agreement(model, arrays, users, m.n_items):.1e}"
        )
        before = load()
        kernel_s = kernel_sample(path, users, seen, args.top)
        print(
            f"  kernel (numpy, 2 processes, BLAS 1 thread each): {kernel_s:.1f} s, "
            f"{pairs / kernel_s / 1e6:.2f} M pairs/s [load {before:.2f}]"
        )
        before = load()
        keras_s = keras_sample(model, users, seen, m.n_items, args.top, args.batch, args.chunk)
        print(
            f"  Keras model.predict (batch {args.batch:,}) + top-N: {keras_s:.1f} s, "
            f"{pairs / keras_s / 1e6:.2f} M pairs/s [load {before:.2f}]"
        )
        print(f"  kernel / model.predict: {keras_s / kernel_s:.1f}x the pairs/s")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
