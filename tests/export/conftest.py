"""The real PostgreSQL and Redis on loopback: each test its own database / Redis db number.

``.ci/run`` starts both when they are not running; without them these tests are skipped with
the reason. Databases are named ``recsys_export_<random>`` and dropped afterwards; Redis db
numbers 8-11 are flushed before and after each test.
"""

from __future__ import annotations

import socket
import uuid

import pytest

PG = "postgresql://postgres@127.0.0.1:5432"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DBS = (8, 9, 10, 11)


def _reachable(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def pg_url():
    """A fresh database's URL, dropped after the test."""
    if not _reachable(5432):
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432 (.ci/run starts it)")
    import psycopg

    name = f"recsys_export_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield f"{PG}/{name}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def redis_url(request):
    """A Redis db number of 8-11 (by the test's name), flushed before and after."""
    if not _reachable(REDIS_PORT):
        pytest.skip("Redis is not running on 127.0.0.1:6379 (.ci/run starts it)")
    import redis

    db = REDIS_DBS[sum(request.node.name.encode()) % len(REDIS_DBS)]
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    client.flushdb()
    client.close()


@pytest.fixture(params=["postgresql", "redis"])
def store_url(request):
    """Each store in turn."""
    return request.getfixturevalue("pg_url" if request.param == "postgresql" else "redis_url")
