"""Scoring throughput: the Spark job against the hardware floor and Spark ML's ALS.

    python benchmarks/score_bench.py --root /tmp/bench-var [--dim 64] [--top 10] [--skip-als]

Needs a prepared run under --root (e.g. ``recsys prepare`` of ``recsys data synth --shape
ml-25m``: 162k users x 59k items). It writes a random biased-MF model of the prepared shape
(scoring cost does not depend on the weights) as a model run, then prints:

1. the full job, ``spark-submit --master local[2] jobs/score.py`` (wall time, pairs scored/s);
2. the floor measured in the same run: numpy matmul of the same factor matrices plus top-N
   selection, no Spark, two processes (both cores), BLAS pinned to one thread each, best of 3;
3. Spark ML ``ALS(maxIter=1, rank=dim).fit`` on the same ratings, then
   ``recommendForAllUsers(top)`` + Parquet write (which, unlike ours, keeps seen items).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from recsys import storage

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def fake_model(root: str, prepared: Path, dim: int) -> str:
    """A random biased-MF ranking model of the prepared shape, committed as a model run."""
    manifest = storage.read_manifest(prepared)
    rng = np.random.default_rng(0)
    nu, ni = manifest["n_users"], manifest["n_items"]
    paths = storage.new_run(root, "models", "2000-01-01")
    np.savez(
        paths.staging / "arrays.npz",
        family=np.array("biased-mf"),
        objective=np.array("ranking"),
        user_factors=rng.normal(0, 0.3, (nu, dim)).astype(np.float32),
        item_factors=rng.normal(0, 0.3, (ni, dim)).astype(np.float32),
        user_bias=np.zeros(nu, np.float32),
        item_bias=rng.normal(0, 0.5, ni).astype(np.float32),
        rating_min=np.float32(1),
        rating_max=np.float32(5),
        global_mean=np.float32(3.5),
        offset=np.float32(0),
        sigmoid=np.bool_(False),
    )
    out = {
        "ds": "2000-01-01",
        "run": paths.run,
        "model_version": f"biased-mf-bench-{paths.run}",
        "family": "biased-mf",
        "prepared": {"ds": manifest["ds"], "run": manifest["run"], "path": str(prepared)},
    }
    storage.commit(paths, out)
    return paths.run


def _floor_part(args) -> float:
    """Score users [lo, hi) against all items, keep the top N: one core, BLAS pinned."""
    from threadpoolctl import threadpool_limits

    users, items, bias, lo, hi, top, block = args
    started = time.perf_counter()
    with threadpool_limits(1, user_api="blas"):
        for s in range(lo, hi, block):
            scores = users[s : min(s + block, hi)] @ items.T + bias  # (b, n_items)
            np.argpartition(scores, -top, axis=1)[:, -top:]
    return time.perf_counter() - started


def floor(arrays_path: Path, top: int, block: int = 512) -> float:
    with np.load(arrays_path) as a:
        users, items, bias = a["user_factors"], a["item_factors"], a["item_bias"]
    n = len(users)
    halves = [
        (users, items, bias, 0, n // 2, top, block),
        (users, items, bias, n // 2, n, top, block),
    ]
    best = float("inf")
    with ProcessPoolExecutor(2) as pool:
        for _ in range(3):
            started = time.perf_counter()
            list(pool.map(_floor_part, halves))
            best = min(best, time.perf_counter() - started)
    return best


def spark_job(root: str, model_run: str, top: int, driver_memory: str) -> float:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = [
        str(BIN / "spark-submit"),
        "--master",
        "local[2]",
        "--driver-memory",
        driver_memory,
        str(ROOT / "jobs" / "score.py"),
        "--root",
        root,
        "--model-ds",
        "2000-01-01",
        "--model-run",
        model_run,
        "--top",
        str(top),
        "--ds",
        "2000-01-02",
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode:
        sys.exit(f"spark-submit failed:\n{proc.stderr[-3000:]}")
    print(proc.stdout.strip().splitlines()[-1])
    return seconds


def als(prepared: Path, dim: int, top: int, driver_memory: str) -> float:
    from pyspark.ml.recommendation import ALS

    from recsys.config import SparkConfig
    from recsys.spark import get_spark

    spark = get_spark(SparkConfig(master="local[2]", driver_memory=driver_memory), "als-bench")
    ratings = spark.read.parquet(str(prepared / "ratings"))
    model = ALS(
        rank=dim, maxIter=1, userCol="user_idx", itemCol="item_idx", ratingCol="rating", seed=0
    ).fit(ratings)
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        model.recommendForAllUsers(top).write.parquet(out + "/recs")
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/bench-var")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--skip-als", action="store_true")
    args = parser.parse_args()

    prepared = storage.latest(args.root, "prepared")
    m = storage.read_manifest(prepared)
    pairs = m["n_users"] * m["n_items"]
    print(f"{m['n_users']:,} users x {m['n_items']:,} items = {pairs:,} pairs, dim {args.dim}")
    run = fake_model(args.root, prepared, args.dim)
    job = spark_job(args.root, run, args.top, args.driver_memory)
    arrays = storage.resolve(args.root, "models", "2000-01-01", run) / "arrays.npz"
    best = floor(arrays, args.top)
    print(f"job (spark-submit local[2]): {job:.1f} s, {pairs / job / 1e6:.1f} M pairs/s")
    print(f"floor (numpy, 2 cores, best of 3): {best:.1f} s, {pairs / best / 1e6:.1f} M pairs/s")
    print(f"job / floor: {job / best:.2f}x (target <= 2)")
    if not args.skip_als:
        als_s = als(prepared, args.dim, args.top, args.driver_memory)
        print(f"ALS recommendForAllUsers({args.top}) + write: {als_s:.1f} s")
        print(f"ALS / job: {als_s / job:.1f}x (target >= 5)")


if __name__ == "__main__":
    main()
