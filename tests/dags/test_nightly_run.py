"""The nightly DAG run for real: ``airflow dags test`` on SQLite, Spark steps (prepare, train,
refit, score) via spark-submit.

One run publishes; a second run of the same date publishes a new table; a run whose gate is
forced to refuse (``gate_min_lift``) fails, runs nothing after the gate and leaves the second
table published. Then the same DAG against a loopback standalone Spark cluster, with recsys
shipped to the executors as a zip.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tinyml import N_USERS, write_tiny_movielens

from recsys import storage
from recsys.cli import main
from recsys.nightly import run_nightly
from recsys.score.publish import validate

# export (no store by default: it does nothing) and retention follow publish; announce, export
TASKS = [
    "source", "prepare", "train", "gate", "refit_or_serve", "refit", "score", "publish", "export",
    "announce", "retention",
]  # fmt: skip
DS = "2026-05-01"
# Small data learns in 10 epochs; the default 40 (with early stopping) only costs time here.
PARAMS = {"train_overrides": ["train.epochs=10"], "spark_driver_memory": "1g"}


def _explain(result) -> str:
    text = result.log.read_text(errors="replace")
    return f"{result.reason}\n--- tail of {result.log}:\n{text[-6000:]}"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_movielens(tmp_path_factory.mktemp("data") / "tiny")


@pytest.mark.slow
def test_nightly_runs_publish_and_a_refused_gate_keeps_the_last_table(tmp_path, tiny, capsys):
    root = tmp_path / "var"
    params = {**PARAMS, "dataset": str(tiny)}

    first = run_nightly(str(root), DS, params)
    print({t.task: round(t.seconds, 1) for t in first.tasks}, f"total {first.seconds:.0f}s")
    assert first.ok, _explain(first)
    assert sorted(t.task for t in first.tasks) == sorted(TASKS)
    assert all(t.state == "success" for t in first.tasks)
    published = storage.latest(str(root), "recommendations")
    table = storage.read_manifest(published)
    assert table["ds"] == DS and published.parent.name == f"ds={DS}"
    assert validate(published) == {"users": N_USERS, "rows": N_USERS * 10, "empty_lists": 0}
    assert table["rows_by_source"] == {"model": N_USERS * 10}  # the refit knows every user
    similar = storage.latest(str(root), "similar_items")
    assert similar.name == published.name and storage.read_manifest(similar)["rows"] > 0
    served = storage.read_manifest(root / table["model"]["path"])  # paths are root-relative
    assert served["refit_of"] and served["training"]["trained_on"] == ["train", "val", "test"]
    evaluated = storage.read_manifest(root / served["refit_of"]["path"])
    test = evaluated["metrics"]["test"]["ndcg@10"]
    popular = evaluated["metrics"]["baselines"]["most_popular"]["ndcg@10"]
    assert test > 2 * popular, (test, popular)
    gate = storage.read_manifest(storage.latest(str(root), "gates"))
    assert gate["passed"] and gate["checks"]["published"] == {"skipped": "nothing published yet"}

    # The same date again: a new run of every table, published over the first.
    second = run_nightly(str(root), DS, params)
    assert second.ok, _explain(second)
    republished = storage.latest(str(root), "recommendations")
    assert republished != published and republished.parent == published.parent
    gate = storage.read_manifest(storage.latest(str(root), "gates"))
    compared = gate["checks"]["published"]
    assert compared["users"] == N_USERS  # today's test users, through yesterday's model
    assert compared["model"] == str(root / served["refit_of"]["path"])  # the evaluated twin

    # What a person reads afterwards.
    capsys.readouterr()
    assert main(["summary", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(republished) in out and "most popular" in out and "their own highest-rated" in out
    assert main(["recommend", "--root", str(root), "--user", "7"]) == 0
    out = capsys.readouterr().out
    assert "user 7" in out and out.count("Movie ") == 10

    # A gate forced to refuse: the run fails with the reason; nothing after the gate runs.
    refused = run_nightly(str(root), DS, {**params, "gate_min_lift": 100.0})
    assert not refused.ok
    states = {t.task: t.state for t in refused.tasks}
    assert states["gate"] == "failed", states
    assert not {"refit", "score", "publish", "retention"} & set(states), states
    assert "refused" in refused.reason and "min_lift 100" in refused.reason, refused.reason
    assert storage.latest(str(root), "recommendations") == republished
    decision = storage.read_manifest(storage.latest(str(root), "gates"))
    assert decision["passed"] is False and "min_lift 100" in decision["reason"]
    log = refused.log.read_text()
    assert f"recsys nightly {DS}: task gate failed" in log  # the failure callback fired
    assert log.count("running /") >= 1


@pytest.mark.slow
def test_the_dag_runs_against_a_standalone_cluster_with_recsys_as_a_zip(
    tmp_path, tiny, monkeypatch
):
    """spark_default points at a loopback master; executors import recsys from the zip only;
    train and refit run as barrier stages of two TensorFlow workers there."""
    import sparkproc

    zip_path = sparkproc.package_zip(tmp_path / "dist" / "recsys.zip")
    python = sparkproc.isolated_python(tmp_path / "python")
    root = tmp_path / "var"
    with sparkproc.start_standalone_cluster(tmp_path / "cluster", cores=2, memory="2g") as cluster:
        conn = {"conn_type": "spark", "host": cluster.url}
        monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps(conn))
        monkeypatch.setenv("RECSYS_PY_FILES", str(zip_path))
        monkeypatch.setenv("PYSPARK_PYTHON", str(python))
        monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        monkeypatch.delenv("PYTHONPATH", raising=False)  # recsys only from the zip
        params = {
            **PARAMS,
            "dataset": str(tiny),
            "spark_executor_memory": "1g",
            "spark_executor_cores": 1,
            "spark_cores_max": 2,
            # train and refit on two executors of one core: a barrier stage of 2 TF workers
            "train_workers": 2,
            "train_executor_memory": "512m",
        }
        result = run_nightly(str(root), DS, params)
        assert result.ok, _explain(result) + "\n" + cluster.log_text()
        apps = cluster.completed_apps()
    names = sorted(app["name"] for app in apps)
    assert names == ["recsys-prepare", "recsys-score", "recsys-train", "recsys-train"], apps
    published = storage.latest(str(root), "recommendations")
    assert validate(published)["users"] == N_USERS
    served = storage.read_manifest(root / storage.read_manifest(published)["model"]["path"])
    assert served["refit_of"] and served["training"]["replicas"] == 2
