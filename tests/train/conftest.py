"""Prepared synthetic runs for the training tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recsys.config import load_config
from recsys.data.synth import shape_from_counts, synthesize


def prepare_synthetic(
    base: Path, counts: tuple[int, int, int], seed: int, ds: str, **prepare: Any
) -> str:
    """Synthesise ``(users, items, ratings)`` under ``base`` and prepare it; returns the root."""
    from recsys.prepare.job import run_prepare

    synthesize(base / "data", shape_from_counts(*counts), seed=seed)
    cfg = load_config(
        root=str(base / "var"),
        source={"input": str(base / "data")},
        prepare=prepare,
        spark={"master": "local[2]", "shuffle_partitions": 2},
    )
    run_prepare(cfg, ds)
    return str(base / "var")


def prepare_clicks(base: Path, lines: list[str], ds: str = "2026-02-03") -> str:
    """Write a click log (``member,sku,when`` lines, header first) under ``base`` and prepare it
    as an implicit log; returns the root."""
    from recsys.prepare.job import run_prepare

    (base / "clicks.csv").write_text("\n".join(lines) + "\n")
    cfg = load_config(
        root=str(base / "var"),
        source={
            "input": str(base / "clicks.csv"),
            **{"user_col": "member", "item_col": "sku", "rating_col": "", "ts_col": "when"},
        },
        spark={"master": "local[2]", "shuffle_partitions": 2},
    )
    run_prepare(cfg, ds)
    return str(base / "var")


@pytest.fixture(scope="session")
def synthetic_run():
    """``prepare_synthetic`` for module-scoped fixtures (which cannot import a conftest)."""
    return prepare_synthetic


@pytest.fixture(scope="session")
def click_run():
    """``prepare_clicks`` for module-scoped fixtures."""
    return prepare_clicks
