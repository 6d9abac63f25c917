"""Benchmark the synthetic MovieLens generator: wall time, rows per second and peak memory.

Run from the repository root (writes a few hundred MB for ml-25m, so point --dest outside it)::

    python benchmarks/synth_bench.py --shape ml-25m --dest /tmp/synth25m

It calls :func:`recsys.data.synth.synthesize` once and prints the wall seconds, rows per second,
CPU seconds, peak resident memory of the process (``resource.getrusage``) and the size of
``ratings.csv``. The generator should finish ml-25m (25M rows) in a few minutes on 2 cores with
peak memory well under 1 GiB; a regression in either shows up here first.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

# Runnable as a plain script from a checkout that is not pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.data.synth import SHAPES, synthesize  # noqa: E402


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> int:
    """Parse options, generate once, print the figures; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="ml-25m", choices=sorted(SHAPES))
    parser.add_argument("--dest", required=True, help="output folder (e.g. /tmp/synth25m)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="generator threads (default 2)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    cpu_before = time.process_time()
    result = synthesize(args.dest, args.shape, seed=args.seed, workers=args.workers)
    cpu = time.process_time() - cpu_before
    size = (result.path / "ratings.csv").stat().st_size

    print(f"shape            {args.shape}")
    print(f"rows             {result.n_ratings:,}")
    print(f"users / items    {result.n_users:,} / {result.n_items:,}")
    print(f"wall seconds     {result.seconds:.1f}")
    print(f"rows per second  {result.n_ratings / result.seconds:,.0f}")
    print(f"cpu seconds      {cpu:.1f}")
    print(f"peak RSS MiB     {peak_rss_mib():.0f}")
    print(f"ratings.csv MiB  {size / 2**20:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
