"""Peak memory of the scoring job as users grow: the same items, two (or more) user counts.

    python benchmarks/score_memory_bench.py --root /tmp/bench-var [--fractions 0.1 1] [--dim 64]

From the prepared run under --root (e.g. the ml-25m shape: 162k users x 59k items) it derives, for
each fraction f < 1, a prepared run of the users with ``user_idx < f x n_users`` (the same items and
item index, every rating of those users) under ``<root>-users<pct>``, reused when present. On each
it writes a random biased-MF model (``score_bench.fake_model``) and runs the full job,
``spark-submit --master local[2] jobs/score.py``, polling the process tree for each process's peak
resident set (VmHWM): the JVM (driver and executor are one JVM in local mode) and the largest
Python worker, which holds the artifact and one Arrow batch of users x all items at a time.

Expected: the worker peak depends on the items and the batch size (1024 users x n_items float32
scores, plus the artifact), not on the number of users; the JVM holds the users' seen lists
(persisted) and is capped by --driver-memory. Each figure is printed with the load average read
just before its run (the machine may be shared).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

from score_bench import fake_model, load, memory_line, spark_job  # this folder

from recsys import storage
from recsys.manifests import PreparedManifest


def subset_root(root: str, prepared: Path, fraction: float) -> str:
    """A prepared run of the first ``fraction`` of users (by index), under ``<root>-users<pct>``."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    out = f"{root.rstrip('/')}-users{round(fraction * 100)}"
    try:
        storage.latest(out, "prepared")
        return out
    except Exception:
        pass
    m = PreparedManifest.read(prepared)
    k = int(m.n_users * fraction)
    paths = storage.new_run(out, "prepared", m.ds, m.run)
    ratings = pads.dataset(prepared / "ratings", format="parquet", partitioning="hive")
    table = ratings.to_table(filter=pc.field("user_idx") < k)
    pq.write_to_dataset(table, paths.staging / "ratings", partition_cols=["split"])
    users = pq.read_table(prepared / "users", filters=[("user_idx", "<", k)])
    (paths.staging / "users").mkdir()
    pq.write_table(users, paths.staging / "users" / "part-0.parquet")
    shutil.copytree(prepared / "items", paths.staging / "items")
    splits = table.group_by("split").aggregate([("user_idx", "count")]).to_pylist()
    counts = {r["split"]: r["user_idx_count"] for r in splits}
    storage.commit(
        paths,
        dataclasses.replace(
            m,
            n_users=k,
            counts=counts,
            extra={**m.extra, "subset_of": str(prepared), "fraction": fraction},
        ),
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/bench-var")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 1.0])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--driver-memory", default="8g")
    args = parser.parse_args()

    base = storage.latest(args.root, "prepared")
    rows = []
    for fraction in sorted(args.fractions):
        root = args.root if fraction >= 1 else subset_root(args.root, base, fraction)
        prepared = storage.latest(root, "prepared")
        m = PreparedManifest.read(prepared)
        run = fake_model(root, prepared, args.dim)
        before = load()
        seconds, peaks = spark_job(root, run, args.top, args.driver_memory)
        pairs = m.n_users * m.n_items
        rows.append((m.n_users, m.n_items, seconds, peaks, before))
        print(
            f"{m.n_users:,} users x {m.n_items:,} items: {seconds:.1f} s, "
            f"{pairs / seconds / 1e6:.1f} M pairs/s [load {before:.2f}]\n  {memory_line(peaks)}"
        )
    block = 1024 * rows[-1][1] * 4 / 2**20
    print(
        f"one Arrow batch of scores (1024 users x {rows[-1][1]:,} items, float32): {block:.0f} MiB"
    )
    (u0, _, _, p0, _), (u1, _, _, p1, _) = rows[0], rows[-1]
    worker = p1.get("worker", 0) / p0.get("worker", 1)
    jvm = p1.get("jvm", 0) / p0.get("jvm", 1)
    print(f"users x{u1 / u0:.1f}: largest Python worker x{worker:.2f}, JVM x{jvm:.2f}")


if __name__ == "__main__":
    main()
