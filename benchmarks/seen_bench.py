"""What prepare's ``seen/`` lists cost, and what publish reads from them.

    python benchmarks/seen_bench.py --root /tmp/bench-var

On the newest prepared run under --root: seconds (best of 3) of ``write_seen`` (group the written
ratings by user, what prepare adds) and of ``read_seen`` (what publish reads), printed with the
1-minute load average (the machine may be shared). Writes to a temporary folder only.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from recsys import storage
from recsys.manifests import PreparedManifest
from recsys.prepare.seen import read_seen, write_seen


def best_of(n: int, fn) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/bench-var")
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    prepared = storage.latest(args.root, "prepared")
    m = PreparedManifest.read(prepared)
    print(f"{m.rows:,} ratings, {m.n_users:,} users x {m.n_items:,} items")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seen"
        load = os.getloadavg()[0]
        w = best_of(3, lambda: write_seen(prepared / "ratings", out, m.n_users, args.files))
        print(f"write_seen (prepare adds): {w:.2f} s [load {load:.2f}]")
        load = os.getloadavg()[0]
        r = best_of(3, lambda: read_seen(out))
        print(f"read_seen (publish reads): {r:.2f} s [load {load:.2f}]")


if __name__ == "__main__":
    main()
