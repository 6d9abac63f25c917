"""Fixtures of the fault tests: a root with yesterday's published table (built once), and a
guard that fails a test when Spark or training starts before the error."""

from __future__ import annotations

import pytest
from faultkit import DS, Published

from recsys import storage


@pytest.fixture(scope="session")
def published(spark, tmp_path_factory):
    pytest.importorskip("tensorflow")
    import pyarrow.parquet as pq
    from scoredata import trained_root

    from recsys.score.job import run_score
    from recsys.score.publish import publish

    cfg = trained_root(tmp_path_factory.mktemp("faults"), DS, seed=3)
    scored = run_score(cfg, DS, "scored", n=5)
    publish(cfg.root, DS, "scored", min_share=0.5)
    table = storage.latest(cfg.root, "recommendations")
    user = str(pq.read_table(table / "table", columns=["user_id"])["user_id"][0])
    assert table == scored.path
    return Published(
        cfg.root,
        storage.latest(cfg.root, "prepared"),
        storage.latest(cfg.root, "models"),
        table,
        user,
    )


@pytest.fixture
def no_heavy_start(monkeypatch):
    """Fail the test if Spark starts or a model trains: the error must come before them."""
    from recsys import spark
    from recsys.prepare import job

    def refuse(*_args, **_kwargs):
        raise AssertionError("Spark started before the error")

    monkeypatch.setattr(spark, "get_spark", refuse)
    monkeypatch.setattr(job, "get_spark", refuse)
    try:
        from recsys.train import step

        def no_fit(*_args, **_kwargs):
            raise AssertionError("training started before the error")

        monkeypatch.setattr(step, "fit", no_fit)
    except ImportError:  # no TensorFlow: nothing can start it
        pass
