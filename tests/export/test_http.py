"""recsys serve: the HTTP endpoint over each store (test client and a real server)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from starlette.testclient import TestClient

from recsys.export import export
from recsys.serving import open_store
from recsys.serving.http import make_app
from tests.export.nights import parquet_list, publish_night

D1 = "2026-01-01"
REPO = Path(__file__).resolve().parents[2]


def test_endpoints(tmp_path, store_url):
    folder = publish_night(str(tmp_path / "var"), D1)
    export(store_url, str(tmp_path / "var"))
    want = [item for item, _, _ in parquet_list(folder, 1)]
    with TestClient(make_app(open_store(store_url))) as client:
        got = client.get("/users/1/recommendations", params={"n": 3}).json()
        assert [r["item_id"] for r in got["items"]] == want[:3]
        assert got["model_version"] == f"fake-{D1}-r0" and got["ds"] == D1
        # Excluding two of the first three still answers three, from further down the list.
        skip = f"{want[0]},{want[2]}"
        got = client.get("/users/1/recommendations", params={"n": 3, "exclude": skip}).json()
        assert [r["item_id"] for r in got["items"]] == [want[1], want[3], want[4]]
        cold = client.get("/users/nobody/recommendations").json()
        assert {r["source"] for r in cold["items"]} == {"popular"}
        near = client.get("/items/1000/similar", params={"n": 2}).json()
        assert [r["item_id"] for r in near["items"]] == [1001, 1002]
        health = client.get("/health").json()
        assert (health["ds"], health["model_version"]) == (D1, f"fake-{D1}-r0")
        bad = client.get("/users/1/recommendations", params={"n": "ten"})
        assert bad.status_code == 400 and "n must be a whole number" in bad.json()["error"]


def test_health_before_any_export_is_503(pg_url):
    with TestClient(make_app(open_store(pg_url))) as client:
        got = client.get("/health")
    assert got.status_code == 503 and "holds no exported generation" in got.json()["error"]


def test_recsys_serve_process(tmp_path, redis_url):
    publish_night(str(tmp_path / "var"), D1)
    export(redis_url, str(tmp_path / "var"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "recsys.cli", "serve", "--from", redis_url, "--port", str(port)]
    proc = subprocess.Popen(cmd, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert health["ds"] == D1
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)
