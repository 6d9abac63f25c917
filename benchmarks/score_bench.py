"""Scoring throughput: the Spark job against the hardware floor and Spark ML's ALS.

    python benchmarks/score_bench.py --root /tmp/bench-var [--dim 64] [--top 10] [--skip-als]
        [--similar-items N]

Needs a prepared run under --root (e.g. ``recsys prepare`` of ``recsys data synth --shape
ml-25m``: 162k users x 59k items). It writes a random biased-MF model of the prepared shape
(scoring cost does not depend on the weights) as a model run, then prints:

1. the full job, ``spark-submit --master local[2] jobs/score.py`` (wall time, pairs scored/s;
   with --similar-items N the job also writes similar_items, which the wall time includes and
   the job's own summary lines split);
2. the floor measured in the same run: numpy matmul of the same factor matrices plus top-N
   selection, no Spark, two processes (both cores), BLAS pinned to one thread each, best of 3;
3. Spark ML ``ALS(maxIter=1, rank=dim).fit`` on the same ratings, then
   ``recommendForAllUsers(top)`` + Parquet write (which, unlike ours, keeps seen items).

The machine may be shared: each figure is printed with the 1-minute load average read just before
its timed section (``load``), and the job's line with its peak memory (``PeakMemory``: the JVM,
which in local mode is driver and executor, and the largest Python worker). The helpers here are
shared by ``score_ncf_bench.py`` and ``score_memory_bench.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from recsys import storage
from recsys.manifests import PreparedManifest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def load() -> float:
    """The 1-minute load average: how busy the (shared) machine is right before a timed section."""
    return os.getloadavg()[0]


def _kind(proc) -> str:
    """jvm, worker (pyspark.daemon and the workers it forks), driver (the job's Python) or other."""
    try:
        name, argv = proc.name(), proc.cmdline()
    except Exception:  # gone, or not ours to read
        return "other"
    cmd = " ".join(argv)
    # The JVM, and its short-lived clones while it spawns a process (they share its memory)
    if name == "java" or (argv and argv[0].endswith("java")):
        return "jvm"
    if name in ("bash", "sh", "dash"):  # spark-submit's launcher scripts, before they exec
        return "other"
    if "pyspark.daemon" in cmd or "pyspark.worker" in cmd or "pyspark/daemon" in cmd:
        return "worker"
    if "python" in cmd:
        return "driver"
    return "other"


def _hwm_kib(pid: int) -> int:
    """Peak resident set of a process (``VmHWM``), KiB; 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Polls the process tree under ``pid`` (spark-submit) for each process's peak RSS (VmHWM).

    The kernel keeps the peak, so polling only has to see each process once before it exits;
    every ``every`` seconds is plenty (Spark's Python workers live as long as the job).
    """

    def __init__(self, pid: int, every: float = 0.2) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self.peaks: dict[tuple[int, str], int] = {}  # (pid, kind) -> KiB
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                children = self._root.children(recursive=True)
            except Exception:
                break
            # spark-submit's script execs the JVM, so the root counts too; a process is classed
            # on every poll (exec changes what it is, and resets its VmHWM).
            for proc in (self._root, *children):
                key = (proc.pid, _kind(proc))
                self.peaks[key] = max(self.peaks.get(key, 0), _hwm_kib(proc.pid))
            self._stop.wait(self._every)

    def stop(self) -> dict[str, float]:
        """Peak MiB per kind: the largest single process, and how many there were."""
        self._stop.set()
        self._thread.join()
        out: dict[str, float] = {}
        for (_, kind), kib in self.peaks.items():
            out[kind] = max(out.get(kind, 0.0), kib / 1024)
            out[f"n_{kind}"] = out.get(f"n_{kind}", 0) + 1
        return out


def memory_line(peaks: dict[str, float]) -> str:
    return (
        f"peak RSS: JVM (driver = executor in local mode) {peaks.get('jvm', 0):,.0f} MiB, "
        f"largest Python worker {peaks.get('worker', 0):,.0f} MiB "
        f"({int(peaks.get('n_worker', 0))} worker processes), "
        f"Python driver {peaks.get('driver', 0):,.0f} MiB"
    )


def random_arrays(n_users: int, n_items: int, dim: int) -> dict[str, np.ndarray]:
    """The arrays of a random biased-MF ranking model (seed 0): what ``Scorer`` loads."""
    rng = np.random.default_rng(0)
    return {
        "family": np.array("biased-mf"),
        "objective": np.array("ranking"),
        "user_factors": rng.normal(0, 0.3, (n_users, dim)).astype(np.float32),
        "item_factors": rng.normal(0, 0.3, (n_items, dim)).astype(np.float32),
        "user_bias": np.zeros(n_users, np.float32),
        "item_bias": rng.normal(0, 0.5, n_items).astype(np.float32),
        "rating_min": np.float32(1),
        "rating_max": np.float32(5),
        "global_mean": np.float32(3.5),
        "offset": np.float32(0),
        "sigmoid": np.bool_(False),
    }


def fake_model(root: str, prepared: Path, dim: int) -> str:
    """A random biased-MF ranking model of the prepared shape, committed as a model run."""
    manifest = PreparedManifest.read(prepared)
    paths = storage.new_run(root, "models", "2000-01-01")
    np.savez(paths.staging / "arrays.npz", **random_arrays(manifest.n_users, manifest.n_items, dim))
    out = {
        "ds": "2000-01-01",
        "run": paths.run,
        "model_version": f"biased-mf-bench-{paths.run}",
        "family": "biased-mf",
        "prepared": {"ds": manifest.ds, "run": manifest.run, "path": str(prepared)},
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


def spark_job(
    root: str, model_run: str, top: int, driver_memory: str, extra: tuple[str, ...] = ()
) -> tuple[float, dict[str, float]]:
    """Wall seconds of ``spark-submit jobs/score.py`` and its peak memory (``PeakMemory``)."""
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
        *extra,
    ]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    monitor = PeakMemory(proc.pid)
    out, err = proc.communicate()
    seconds = time.perf_counter() - started
    peaks = monitor.stop()
    if proc.returncode:
        sys.exit(f"spark-submit failed:\n{err[-3000:]}")
    for line in out.strip().splitlines():  # the job's own summary line(s), not its log
        if not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line):
            print(line)
    return seconds, peaks


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
    parser.add_argument(
        "--similar-items", type=int, default=0, help="the job also writes similar_items (N)"
    )
    args = parser.parse_args()

    prepared = storage.latest(args.root, "prepared")
    m = PreparedManifest.read(prepared)
    pairs = m.n_users * m.n_items
    print(f"{m.n_users:,} users x {m.n_items:,} items = {pairs:,} pairs, dim {args.dim}")
    run = fake_model(args.root, prepared, args.dim)
    load_job = load()
    extra = ("--similar-items", str(args.similar_items)) if args.similar_items else ()
    job, peaks = spark_job(args.root, run, args.top, args.driver_memory, extra)
    arrays = storage.resolve(args.root, "models", "2000-01-01", run) / "arrays.npz"
    load_floor = load()
    best = floor(arrays, args.top)
    print(
        f"job (spark-submit local[2]): {job:.1f} s, {pairs / job / 1e6:.1f} M pairs/s "
        f"[load {load_job:.2f}]"
    )
    print(f"  {memory_line(peaks)}")
    print(
        f"floor (numpy, 2 cores, best of 3): {best:.1f} s, {pairs / best / 1e6:.1f} M pairs/s "
        f"[load {load_floor:.2f}]"
    )
    print(f"job / floor: {job / best:.2f}x (target <= 2)")
    if not args.skip_als:
        load_als = load()
        als_s = als(prepared, args.dim, args.top, args.driver_memory)
        print(f"ALS recommendForAllUsers({args.top}) + write: {als_s:.1f} s [load {load_als:.2f}]")
        print(f"ALS / job: {als_s / job:.1f}x (target >= 5)")


if __name__ == "__main__":
    main()
