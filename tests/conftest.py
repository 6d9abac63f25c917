"""Shared fixtures: one local[2] SparkSession for the whole run, and small data builders."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("RECSYS_SPARK_LOG_LEVEL", "ERROR")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="session")
def spark_config():
    from recsys.config import SparkConfig

    return SparkConfig(master="local[2]", driver_memory="2g", shuffle_partitions=2)


@pytest.fixture(scope="session")
def spark(spark_config):
    from recsys.spark import get_spark

    session = get_spark(spark_config, "recsys-tests")
    yield session
    session.stop()


@pytest.fixture
def write(tmp_path):
    """Write text or bytes under tmp_path: write("ml/ratings.csv", "a,b\\n") -> Path."""

    def _write(name: str, content: str | bytes):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return _write
