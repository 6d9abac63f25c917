"""
### recsys nightly

`source` -> `prepare` (Spark) -> `train` (Spark barrier stage, TensorFlow; evaluates its model once,
with every baseline) -> `gate` (judges those figures) -> `refit_or_serve` (branch on param `refit`)
-> `refit` (as train; shown skipped when off) -> `score` (Spark: the refit, else train's model) ->
`publish` -> `announce`, `retention`, once per logical date `ds` (tasks, params and environment:
the README, "The nightly run"). A refused gate or a shrunken input or table fails the run without
retry and yesterday's table stays published. Data goes from task to task one way: each task's
return value, passed as an argument (a Spark task's `inputs`); task attempts write runs of their
own, and each `recsys` command hands its outcome back as JSON, never as text.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from pathlib import Path

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowSkipException

# The operators live beside this file (also when the file is linked into another dags folder).
sys.path.insert(0, str(Path(__file__).resolve().parent))
from recsys_operators import (  # noqa: E402
    PrepareJob,
    RefitJob,
    ScoreJob,
    TrainJob,
    alert,
    at,
    attempt_run,
    moves,
    store_url,
)
from recsys_operators import run_recsys as _recsys  # noqa: E402

ENV = os.environ
DEFAULT_ROOT = ENV.get("RECSYS_ROOT") or str(Path(__file__).resolve().parents[1] / "var")
SCHEDULE = ENV.get("RECSYS_SCHEDULE", "@daily")  # "none": only triggered runs
HEAVY = dt.timedelta(hours=float(ENV.get("RECSYS_TIMEOUT_HOURS", "6")))
# Downstream DAGs schedule on it (by name); each event's extra names the table that went live.
RECOMMENDATIONS = Asset(
    name="recsys_recommendations", uri=f"file://{Path(DEFAULT_ROOT).absolute()}/recommendations"
)


PARAMS = {
    "root": Param(DEFAULT_ROOT, type="string", description="storage root of every table"),
    "dataset": Param("ml-latest-small", type="string", description="release, path, synthetic:"),
    "offline": Param(False, type="boolean", description="never download"),
    "split": Param("leave-last", enum=["leave-last", "temporal", "random", "stratified", "return"]),
    "split_gap": Param("1d", type="string", description="return split: the shortest pause"),
    # recsys.families.NAMES (tests/test_families.py checks it; the DAG imports no recsys to parse).
    "model": Param("biased-mf", enum=["biased-mf", "mf", "ncf", "neumf", "seq"]),
    "objective": Param("ranking", enum=["ranking", "rating"]),
    "train_overrides": Param([], type="array", description="`--set key=value` of recsys train"),
    "top_n": Param(10, type="integer", minimum=1, description="items per user"),
    "similar_items": Param(10, type="integer", minimum=0, description="0: no similar_items"),
    "serve_extra": Param(0, type="integer", minimum=0, description="items kept beyond top_n"),
    "warm_start": Param(True, type="boolean", description="start from last night's model"),
    "refit": Param(True, type="boolean", description="train on the held-out rows before scoring"),
    "refit_mode": Param("continue", enum=["continue", "full"]),
    "drift_min_share": Param(0.5, type="number", minimum=0, description="prepare's guard"),
    "publish_min_share": Param(0.5, type="number", minimum=0, description="publish's guard"),
    "move_latest_backwards": Param(False, type="boolean", description="a backfill moves _LATEST"),
    "gate_tolerance": Param(0.1, type="number", minimum=0),
    "gate_min_lift": Param(0.0, type="number"),
    "retention_days": Param(14, type="integer", minimum=0),
    "export_to": Param([], type="array", description="Airflow connection ids of serving stores"),
    "spark_driver_memory": Param("4g", type="string"),
    "spark_executor_memory": Param("2g", type="string"),
    "spark_executor_cores": Param(1, type="integer", minimum=1),
    "spark_cores_max": Param(2, type="integer", minimum=1),
    # Training runs on its own executors: one TensorFlow worker each, on all their cores.
    "train_workers": Param(1, type="integer", minimum=1, description="TensorFlow workers"),
    "train_executor_cores": Param(1, type="integer", minimum=1),
    "train_executor_memory": Param("1g", type="string", description="JVM heap of one"),
    "train_memory_overhead": Param("4g", type="string", description="its TensorFlow process"),
}


@dag(
    dag_id="recsys_nightly",
    schedule=None if SCHEDULE.lower() == "none" else SCHEDULE,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["recsys", "recommendations", "spark", "tensorflow"],
    doc_md=__doc__,
    default_args={
        "retries": int(ENV.get("RECSYS_RETRIES", "2")),
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(hours=1),
        "execution_timeout": dt.timedelta(hours=1),
        "on_failure_callback": alert,
    },
    params=PARAMS,
)
def recsys_nightly():
    @task
    def source(params=None, dag_run=None, ds=None) -> dict[str, str]:
        """Fix the run's paths and bring the input: a path as is, a release name downloaded."""
        when = ds or (dag_run.logical_date or dag_run.run_after).strftime("%Y-%m-%d")
        run = re.sub(r"[^A-Za-z0-9._-]+", "_", dag_run.run_id).strip("_.")
        root = str(Path(params["root"]).absolute())
        data_dir = ENV.get("RECSYS_DATA_DIR") or str(Path(root).parent / "data")
        offline = ["--offline"] if params["offline"] else []
        got = _recsys("data", "get", params["dataset"], "--dest", data_dir, *offline)
        return {"root": root, "ds": when, "run": run, "input": got["input"]}

    @task(retries=0)
    def gate(model: dict, paths: dict, params=None, ti=None) -> None:
        """Judge the model: the figures its training recorded against popularity, and its
        lists against the published model's, both ranked on today's test users."""
        _recsys(
            *("gate", *at(paths), "--run", attempt_run(paths["run"], ti.try_number)),
            *("--model-ds", model["model_ds"], "--model-run", model["model_run"]),
            *("--tolerance", str(params["gate_tolerance"])),
            *("--min-lift", str(params["gate_min_lift"])),
        )

    @task.branch
    def refit_or_serve(params=None) -> list[str]:
        """Param refit on: refit, then score the refit; off: refit is skipped (as the UI shows)
        and score serves the trained model."""
        return ["refit", "score"] if params["refit"] else ["score"]

    @task
    def publish(paths: dict, scored: dict, params=None) -> dict[str, str]:
        """Validate the table this run scored, then make it live (unless a newer ds is)."""
        out = _recsys(
            *("publish", *at(paths, scored["ds"]), "--run", scored["run"], *moves(params)),
            *("--min-share", str(params["publish_min_share"])),
        )
        return {**scored, "path": out["path"], "live": out["moved"]}

    @task
    def export(paths: dict, published: dict, params=None) -> None:
        """Load the published run into each serving store as a generation and switch to it."""
        for conn_id in params["export_to"]:
            url, password = store_url(conn_id)
            ENV["RECSYS_STORE_PASSWORD"] = password
            try:
                _recsys("export", "--to", url, *at(paths, published["ds"]),
                        "--run", published["run"], *moves(params))  # fmt: skip
            finally:
                ENV.pop("RECSYS_STORE_PASSWORD", None)

    @task(outlets=[RECOMMENDATIONS])
    def announce(published: dict, outlet_events=None) -> None:
        """Tell downstream DAGs a new table is live; a backfill that left _LATEST is skipped."""
        if not published["live"]:
            raise AirflowSkipException("recommendations/_LATEST did not move (an older ds)")
        outlet_events[RECOMMENDATIONS].extra = {k: published[k] for k in ("ds", "run", "path")}

    @task
    def retention(paths: dict, params=None) -> None:
        _recsys("retention", *at(paths), "--days", str(params["retention_days"]))

    paths = source()
    prepared = PrepareJob(inputs={"paths": paths}, execution_timeout=HEAVY).output
    trained = TrainJob(inputs={"paths": paths, "prepared": prepared}, execution_timeout=HEAVY)
    chosen = refit_or_serve()
    gate(trained.output, paths) >> chosen
    refit = RefitJob(inputs={"paths": paths, "trained": trained.output}, execution_timeout=HEAVY)
    chosen >> refit
    models = {"trained": trained.output, "refitted": refit.output}
    # Runs after the refit, or without it when the branch skipped it.
    score = ScoreJob(
        inputs={"paths": paths, **models},
        trigger_rule="none_failed_min_one_success",
        execution_timeout=HEAVY,
    )
    chosen >> score
    published = publish(paths, score.output)
    export(paths, published) >> announce(published)
    published >> retention(paths)


recsys_nightly()
