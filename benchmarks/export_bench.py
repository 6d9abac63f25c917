"""Serving stores: export seconds, lookup latency and throughput, with a switch under load.

    PYTHONPATH=. python benchmarks/export_bench.py --shape ml-1m [--stores postgresql,redis,http]
        [--clients 8] [--seconds 10] [--lookups 2000]

Writes two published nights of the shape (``--shape ml-1m``: 6,040 users x 10 = 60,400 rows;
``ml-25m``: 162,541 users x 10 = 1.6 M rows; random lists, one model_version each) under a
temporary root with ``tests/export/nights.publish_big``, then for each store (a fresh
``recsys_export_bench_*`` PostgreSQL database, dropped afterwards; Redis db 11, flushed):

1. ``export`` seconds of night 1 and of night 2 (each a new generation and its switch);
2. one client: ``--lookups`` random users, p50/p99 latency of ``recommend(user, 10)``;
3. ``--clients`` threads reading for ``--seconds``, while the main thread rolls back to night 1
   a quarter of the way in and re-exports night 2 halfway (a reused generation: the switch
   alone) - lookups/s, errors, and mixed lists (more than one model_version in one answer, or
   a list that is not the user's list of that version).

``http`` runs ``recsys serve --from`` the PostgreSQL store in its own process and does 2 and 3
through it (one keep-alive connection per client). Clients are threads of this one Python
process, so on a small machine the client side is part of what is measured; the 1-minute load
average is printed before each timed section.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import redis

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.export import export, rollback  # noqa: E402
from recsys.serving import open_store  # noqa: E402
from tests.export.nights import publish_big  # noqa: E402

SHAPES = {"ml-1m": (6_040, 3_706), "ml-25m": (162_541, 59_047)}
D1, D2 = "2026-03-01", "2026-03-02"
PG = "postgresql://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/11"


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms"


class HttpStore:
    """recommend() through ``recsys serve``: one keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def recommend(self, user, n: int = 10) -> list[dict]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", f"/users/{user}/recommendations?n={n}")
        response = conn.getresponse()
        body = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(body)
        return [{"model_version": body["model_version"], **r} for r in body["items"]]


def versions_and_items(rows) -> tuple[set, list]:
    if rows and isinstance(rows[0], dict):
        return {r["model_version"] for r in rows}, [r["item_id"] for r in rows]
    return {r.model_version for r in rows}, [r.item_id for r in rows]


def expected_lists(folders: dict[str, Path]) -> dict[str, dict]:
    """version -> user -> item ids in rank order, read from the Parquet tables."""
    import pyarrow.parquet as pq

    out = {}
    for version, folder in folders.items():
        frame = pq.read_table(folder / "table", columns=["user_id", "rank", "item_id"])
        frame = frame.to_pandas().sort_values(["user_id", "rank"])
        items = frame["item_id"].to_numpy().reshape(-1, 10)
        users = frame["user_id"].to_numpy()[::10].tolist()
        out[version] = dict(zip(users, items.tolist(), strict=True))
    return out


def one_client(store, users: list[int], lookups: int) -> str:
    times = []
    for user in random.Random(1).choices(users, k=lookups):
        start = time.perf_counter()
        store.recommend(user, 10)
        times.append(time.perf_counter() - start)
    return percentiles(times)


def under_load(store, url, root, users, expected, clients: int, seconds: float) -> str:
    """Clients read while the store rolls back and switches forward again."""
    stop = threading.Event()
    counts = {"reads": 0, "errors": 0, "mixed": 0}
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        reads = errors = mixed = 0
        while not stop.is_set():
            user = rng.choice(users)
            try:
                versions, items = versions_and_items(store.recommend(user, 10))
            except Exception:
                errors += 1
                continue
            reads += 1
            if len(versions) != 1 or expected[versions.pop()][user] != items:
                mixed += 1
        with lock:
            for key, value in (("reads", reads), ("errors", errors), ("mixed", mixed)):
                counts[key] += value

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds / 4)
    t0 = time.perf_counter()
    rollback(url)
    back = time.perf_counter() - t0
    time.sleep(max(0.0, started + seconds / 2 - time.perf_counter()))
    t0 = time.perf_counter()
    export(url, root, ds=D2)
    forward = time.perf_counter() - t0
    time.sleep(max(0.0, started + seconds - time.perf_counter()))
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return (
        f"{counts['reads'] / elapsed:,.0f} lookups/s ({counts['reads']:,} in {elapsed:.1f} s), "
        f"errors {counts['errors']}, mixed or wrong lists {counts['mixed']}; "
        f"rollback {back:.2f} s, switch {forward:.2f} s"
    )


def start_server(url: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "recsys.cli", "serve", "--from", url, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("recsys serve did not start") from None
            time.sleep(0.1)


def bench_store(name: str, url: str, root: str, users, expected, args) -> None:
    for ds in (D1, D2):
        print(f"{name}: export ds={ds} ... ({load()})", flush=True)
        t0 = time.perf_counter()
        out = export(url, root, ds=ds)
        print(f"{name}: export ds={ds}: {time.perf_counter() - t0:.1f} s "
              f"({out['rows']:,} rows, {out['users']:,} users)", flush=True)  # fmt: skip
    targets = [(name, None)]
    if name == "postgresql" and "http" in args.stores:
        targets.append(("http", url))
    for label, server_url in targets:
        proc = None
        if server_url:
            proc, port = start_server(server_url)
            store = HttpStore(port)
        else:
            store = open_store(url)
        try:
            latency = one_client(store, users, args.lookups)
            print(f"{label}: one client, {args.lookups} lookups: {latency} ({load()})", flush=True)
            result = under_load(store, url, root, users, expected, args.clients, args.seconds)
            print(f"{label}: {args.clients} clients, {args.seconds:.0f} s: {result} ({load()})",
                  flush=True)  # fmt: skip
        finally:
            if proc is not None:
                os.kill(proc.pid, signal.SIGTERM)
                proc.wait(10)
            else:
                store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="ml-1m")
    parser.add_argument("--stores", default="postgresql,redis,http")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    n_users, n_items = SHAPES[args.shape]
    with tempfile.TemporaryDirectory() as tmp:
        root = str(Path(tmp) / "var")
        folders = {}
        for seed, ds in enumerate((D1, D2)):
            version = f"bench-{ds}"
            folders[version] = publish_big(root, ds, n_users, n_items, seed=seed, version=version)
        expected = expected_lists(folders)
        users = list(range(1, n_users + 1))
        print(f"shape {args.shape}: {n_users:,} users x 10 = {n_users * 10:,} rows a night")
        if "postgresql" in args.stores or "http" in args.stores:
            db = f"recsys_export_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {db}")
            try:
                bench_store("postgresql", f"{PG}/{db}", root, users, expected, args)
            finally:
                with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE {db} WITH (FORCE)")
        if "redis" in args.stores:
            client = redis.Redis.from_url(REDIS)
            client.flushdb()
            try:
                bench_store("redis", REDIS, root, users, expected, args)
            finally:
                client.flushdb()


if __name__ == "__main__":
    main()
