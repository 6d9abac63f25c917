"""Benchmark ``recsys prepare`` on a synthetic MovieLens-shaped set: wall time and peak memory.

    python benchmarks/prepare_bench.py --shape ml-25m --data /tmp/synth-ml-25m --root /tmp/bench-var

Synthesises the data first when the folder has no ratings.csv (not timed), then runs
``recsys prepare`` as a child process and samples the resident memory of its whole process tree
(the Python driver plus the JVM) every 0.2 s. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="ml-25m")
    parser.add_argument("--data", default="/tmp/synth-ml-25m")
    parser.add_argument("--root", default="/tmp/bench-var")
    parser.add_argument("--split", default="leave-last")
    parser.add_argument("extra", nargs="*", help="more `recsys prepare` options")
    args = parser.parse_args()

    data = Path(args.data)
    if not (data / "ratings.csv").is_file():
        from recsys.data.synth import synthesize

        print(f"synthesising {args.shape} into {data} (not timed) ...", flush=True)
        synthesize(data, args.shape)
    shutil.rmtree(args.root, ignore_errors=True)
    recsys = shutil.which("recsys") or str(Path(sys.executable).parent / "recsys")
    cmd = [recsys, "prepare", "--input", str(data), "--root", args.root, "--split", args.split]
    cmd += args.extra
    started = time.perf_counter()
    child = subprocess.Popen(cmd)
    proc = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss(proc))
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    with open(data / "ratings.csv", "rb") as f:
        rows = sum(1 for _ in f) - 1
    print(f"exit code       {child.returncode}")
    print(f"input rows      {rows:,}")
    print(f"wall seconds    {seconds:.1f}")
    print(f"rows per second {rows / seconds:,.0f}")
    print(f"peak RSS (GiB)  {peak / 2**30:.2f}  (driver Python + JVM)")
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
