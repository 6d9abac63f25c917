"""Faults of recsys export: foreign names, a killed load, a full Redis; one sentence, exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import redis

from recsys.cli import main
from recsys.export import export
from recsys.serving import open_store
from tests.export.nights import publish_big, publish_night

D1, D2, D3 = "2026-01-01", "2026-01-02", "2026-01-03"
REPO = Path(__file__).resolve().parents[2]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_postgres_refuses_a_table_it_did_not_create(tmp_path, pg_url, capsys):
    publish_night(str(tmp_path / "var"), D1)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE recsys_recommendations (mine int)")
        conn.execute("INSERT INTO recsys_recommendations VALUES (7)")
    assert main(["export", "--to", pg_url, "--root", str(tmp_path / "var")]) == 2
    assert "recsys_recommendations, which recsys did not create" in _one_error(capsys)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT mine FROM recsys_recommendations").fetchall() == [(7,)]


def test_redis_refuses_a_key_space_it_did_not_create(tmp_path, redis_url, capsys):
    publish_night(str(tmp_path / "var"), D1)
    client = redis.Redis.from_url(redis_url)
    client.set("recsys:current", "theirs")
    assert main(["export", "--to", redis_url, "--root", str(tmp_path / "var")]) == 2
    assert "recsys: keys that recsys did not create" in _one_error(capsys)
    assert client.get("recsys:current") == b"theirs" and client.dbsize() == 1


def _start_export(url: str, root: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "recsys.cli", "export", "--to", url, "--root", str(root)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(condition, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the export never reached the point to kill it"
        time.sleep(0.05)


def test_redis_killed_load_is_cleaned_by_the_next_export(tmp_path, redis_url):
    root = tmp_path / "var"
    publish_night(str(root), D1)
    export(redis_url, str(root))
    publish_big(str(root), D2, users=40_000)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    proc = _start_export(redis_url, root)
    _wait(lambda: client.exists("recsys:g2:popular") == 0 and client.dbsize() > 5_000, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert client.get("recsys:current") == "1" and "loading" in client.hget("recsys:gens", 2)
    publish_night(str(root), D3, seed=2)
    out = export(redis_url, str(root))
    assert (out["generation"], out["switched"]) == (3, True)
    assert not list(client.scan_iter(match="recsys:g2:*")) and client.hget("recsys:gens", 2) is None


def test_postgres_killed_load_leaves_nothing(tmp_path, pg_url):
    root = tmp_path / "var"
    publish_night(str(root), D1)
    export(pg_url, str(root))
    publish_big(str(root), D2, users=5_000)
    with psycopg.connect(pg_url) as blocker, psycopg.connect(pg_url, autocommit=True) as watch:
        # Holding SHARE on the generations table stops the load at its last step, its
        # generation tables filled inside its open transaction: there it is killed.
        blocker.execute("LOCK TABLE recsys_generations IN SHARE MODE")
        proc = _start_export(pg_url, root)
        waiting = ("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND query LIKE 'INSERT INTO recsys_generations%'")  # fmt: skip
        _wait(lambda: watch.execute(waiting).fetchone()[0] == 1, proc)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        blocker.rollback()
    publish_night(str(root), D3, seed=2)
    out = export(pg_url, str(root))
    assert out["switched"] and out["ds"] == D3
    with psycopg.connect(pg_url) as conn:
        gens = conn.execute("SELECT ds FROM recsys_generations ORDER BY gen").fetchall()
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename ~ '^recsys_(lists|similar)_g'"
        ).fetchone()[0]
    assert gens == [(D1,), (D3,)] and tables == 4


def _own_redis(tmp_path, *options: str):
    """A redis-server of our own on a free port (a generator: yields its port, then stops it by
    pid)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path), *options],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def small_redis(tmp_path):
    """A Redis of our own with a 4 MB maxmemory."""
    for port in _own_redis(tmp_path, "--maxmemory", "4mb", "--maxmemory-policy", "noeviction"):
        yield f"redis://127.0.0.1:{port}/0"


def test_redis_bad_password_is_one_sentence(tmp_path, capsys):
    publish_night(str(tmp_path / "var"), D1)
    for port in _own_redis(tmp_path, "--requirepass", "right"):
        url = f"redis://:wrong@127.0.0.1:{port}/0"
        assert main(["export", "--to", url, "--root", str(tmp_path / "var")]) == 2
        err = _one_error(capsys)
        assert err.startswith("recsys export: error: cannot use the Redis server of")
        assert "wrong" not in err and ":***@" in err


def test_postgres_orphan_tables_go_with_the_next_export(tmp_path, pg_url):
    root = str(tmp_path / "var")
    publish_night(root, D1)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE recsys_lists_g7 (x int)")
        conn.execute("COMMENT ON TABLE recsys_lists_g7 IS 'created by recsys export'")
    export(pg_url, root)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('recsys_lists_g7')").fetchone()[0] is None


def test_redis_maxmemory_mid_load_switches_nothing(tmp_path, small_redis, capsys):
    root = str(tmp_path / "var")
    publish_night(root, D1)
    assert main(["export", "--to", small_redis, "--root", root]) == 0
    publish_big(root, D2, users=40_000)
    capsys.readouterr()
    assert main(["export", "--to", small_redis, "--root", root]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "reached its maxmemory" in err[-1] and "current one stays" in err[-1]
    client = redis.Redis.from_url(small_redis, decode_responses=True)
    assert client.get("recsys:current") == "1" and not list(client.scan_iter("recsys:g2:*"))
    store = open_store(small_redis)
    assert store.health()["ds"] == D1
    store.close()
