"""The DAG file parses fast, cleanly, without a database and without heavy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("recsys_nightly")
out = {
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": sorted(bag.dags),
    "heavy": [m for m in ("tensorflow", "keras", "pyspark", "recsys", "numpy") if m in sys.modules],
}
if dag is not None:
    out.update(
        upstream={t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        retries={t.task_id: t.retries for t in dag.tasks},
        operators={t.task_id: type(t).__name__ for t in dag.tasks},
        params=dag.params.dump(),
        max_active_runs=dag.max_active_runs,
        catchup=dag.catchup,
        tags=sorted(dag.tags),
        timetable=str(dag.timetable),
        doc="recsys nightly" in (dag.doc_md or ""),
        conn_ids={t.task_id: getattr(t, "_conn_id", None) for t in dag.tasks},
        spark_jobs=sorted(
            t.task_id for t in dag.tasks if any(c.__name__ == "SparkSubmitOperator"
                                                for c in type(t).__mro__)
        ),  # fmt: skip
        outlets={t.task_id: [a.name for a in t.outlets] for t in dag.tasks if t.outlets},
        timeouts={t.task_id: t.execution_timeout.total_seconds() for t in dag.tasks},
        trigger_rules={t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule)
                       for t in dag.tasks},  # fmt: skip
        # Data goes between tasks as return values only: no Jinja string in any templated field.
        jinja=sorted({t.task_id for t in dag.tasks for f in t.template_fields
                      if "{{" in repr(getattr(t, f, ""))}),
    )
    module = next(m for m in list(sys.modules.values())
                  if getattr(m, "__file__", None) == dag.fileloc)  # fmt: skip
    out["attempts"] = [module.attempt_run("manual__2026", n, suffix)
                       for n in (None, 1, 2, 5) for suffix in ("", "-refit")]  # fmt: skip
print("RESULT" + json.dumps(out, default=str))
"""


def _parse(tmp_path, **env_extra) -> dict:
    db = tmp_path / "db" / "airflow.db"
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        # A database that does not exist yet: parsing must not even connect (sqlite would
        # create the file on the first connection).
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{db}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        **env_extra,
    )
    (tmp_path / "db").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not db.exists(), "parsing the DAG file touched the metadata database"
    return json.loads(line[0][len("RESULT") :])


def test_the_dag_imports_cleanly_with_the_expected_graph(tmp_path):
    out = _parse(tmp_path)
    assert out["errors"] == {}
    assert out["dags"] == ["recsys_nightly"]
    assert out["heavy"] == [], "the DAG file imported heavy modules at parse time"
    assert out["upstream"] == {
        "source": [],
        "prepare": ["source"],
        "train": ["prepare", "source"],
        "gate": ["source", "train"],
        "refit_or_serve": ["gate"],
        "refit": ["refit_or_serve", "source", "train"],
        "score": ["refit", "refit_or_serve", "source", "train"],
        "publish": ["score", "source"],
        "export": ["publish", "source"],
        "announce": ["export", "publish"],
        "retention": ["publish", "source"],
    }
    assert "Branch" in out["operators"]["refit_or_serve"]
    # Score follows the refit, or the branch alone when param refit skipped the refit.
    assert out["trigger_rules"]["score"] == "none_failed_min_one_success"
    assert {v for k, v in out["trigger_rules"].items() if k != "score"} == {"all_success"}
    assert out["jinja"] == []
    # Every heavy step runs on the cluster; the Airflow worker only submits and waits.
    assert out["spark_jobs"] == ["prepare", "refit", "score", "train"]
    assert {out["conn_ids"][t] for t in out["spark_jobs"]} == {"spark_default"}
    assert out["params"]["train_workers"] == 1
    # Retries with backoff everywhere, except the gate: a refusal is not a transient error.
    assert out["retries"]["gate"] == 0
    assert {v for k, v in out["retries"].items() if k != "gate"} == {2}
    assert out["max_active_runs"] == 1 and out["catchup"] is False and out["doc"]
    assert "0 0 * * *" in out["timetable"]
    params = out["params"]
    assert params["top_n"] == 10 and params["split"] == "leave-last"
    assert params["split_gap"] == "1d" and params["serve_extra"] == 0
    assert params["refit"] is True and params["objective"] == "ranking"
    assert params["warm_start"] is True and params["refit_mode"] == "continue"
    assert params["root"] == str(REPO / "var")
    assert params["drift_min_share"] == params["publish_min_share"] == 0.5
    assert params["move_latest_backwards"] is False
    assert params["export_to"] == []  # make run needs no serving store
    # Downstream DAGs hear of a new live table through this Asset, from announce only.
    assert out["outlets"] == {"announce": ["recsys_recommendations"]}
    heavy = {k for k, v in out["timeouts"].items() if v == 6 * 3600}
    assert heavy == {"prepare", "train", "refit", "score"}
    assert {v for k, v in out["timeouts"].items() if k not in heavy} == {3600}
    # A cleared or retried task writes a run of its own: the same id again would be refused.
    assert out["attempts"] == [
        "manual__2026", "manual__2026-refit", "manual__2026", "manual__2026-refit",
        "manual__2026.try2", "manual__2026-refit.try2", "manual__2026.try5",
        "manual__2026-refit.try5",
    ]  # fmt: skip


def test_schedule_retries_and_root_come_from_the_environment(tmp_path):
    out = _parse(
        tmp_path,
        RECSYS_SCHEDULE="@hourly",
        RECSYS_RETRIES="0",
        RECSYS_ROOT=str(tmp_path / "store"),
    )
    assert out["errors"] == {}
    assert "0 * * * *" in out["timetable"]
    assert set(out["retries"].values()) == {0}
    assert out["params"]["root"] == str(tmp_path / "store")


def test_export_to_connections_become_urls_without_their_password(monkeypatch):
    sys.path.insert(0, str(REPO / "dags"))
    from recsys_operators import store_url

    monkeypatch.setenv("AIRFLOW_CONN_SHOP_PG", "postgres://app:s%40cret@db.local:5433/shop")
    monkeypatch.setenv("AIRFLOW_CONN_SHOP_CACHE", '{"conn_type": "redis", "host": "cache", '
                       '"port": 6380, "password": "pw", "extra": {"db": 3}}')  # fmt: skip
    assert store_url("shop_pg") == ("postgresql://app@db.local:5433/shop", "s@cret")
    assert store_url("shop_cache") == ("redis://cache:6380/3", "pw")
