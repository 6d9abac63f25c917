"""Fixtures of the spark-submit tests: what a cluster user ships, and a Python that needs it."""

from __future__ import annotations

from pathlib import Path

import pytest
import sparkproc


@pytest.fixture(scope="module")
def package_zip(tmp_path_factory) -> Path:
    """The zip a cluster user ships, built the way ``make dist`` builds it."""
    return sparkproc.package_zip(tmp_path_factory.mktemp("dist") / "recsys.zip")


@pytest.fixture(scope="module")
def isolated_python(tmp_path_factory) -> Path:
    """This venv's Python without the editable recsys, so only the zip can provide it."""
    return sparkproc.isolated_python(tmp_path_factory.mktemp("python"))
