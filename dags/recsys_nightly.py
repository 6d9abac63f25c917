"""
### recsys nightly

`source` -> `prepare` (Spark) -> `train` (Spark barrier stage, TensorFlow) -> `evaluate`, `gate`
-> `refit` (as train) -> `score` (Spark) ->
`publish` -> `announce`, `retention`, once per logical date `ds` (tasks, params and environment:
the README, "The nightly run"). A refused gate or a shrunken input or table fails the run without
retry and yesterday's table stays published. Task attempts write runs of their own and hand their
ids on through XCom; each `recsys` command hands its outcome back as JSON, never as text.
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
from recsys_operators import RecsysSparkJob, RecsysTrainJob, alert, attempt_run  # noqa: E402
from recsys_operators import run_recsys as _recsys  # noqa: E402

ENV = os.environ
DEFAULT_ROOT = ENV.get("RECSYS_ROOT") or str(Path(__file__).resolve().parents[1] / "var")
SCHEDULE = ENV.get("RECSYS_SCHEDULE", "@daily")  # "none": only triggered runs
HEAVY = dt.timedelta(hours=float(ENV.get("RECSYS_TIMEOUT_HOURS", "6")))
# Downstream DAGs schedule on it (by name); each event's extra names the table that went live.
RECOMMENDATIONS = Asset(
    name="recsys_recommendations", uri=f"file://{Path(DEFAULT_ROOT).absolute()}/recommendations"
)


def _at(paths: dict, ds: str | None = None) -> list[str]:
    """``--root`` and ``--ds`` of a command: the run's root, and its ds unless another is given."""
    return ["--root", paths["root"], "--ds", ds or paths["ds"]]


def _moves(params) -> list[str]:
    """`--set` of every committing command: may a backfill move _LATEST?"""
    backwards = str(bool(params["move_latest_backwards"])).lower()
    return ["--set", f"move_latest_backwards={backwards}"]


PARAMS = {
    "root": Param(DEFAULT_ROOT, type="string", description="storage root of every table"),
    "dataset": Param("ml-latest-small", type="string", description="release name or a path"),
    "offline": Param(False, type="boolean", description="never download; synthesise"),
    "split": Param("leave-last", enum=["leave-last", "temporal", "random", "stratified"]),
    "model": Param("biased-mf", enum=["biased-mf", "mf", "ncf", "neumf", "seq"]),
    "objective": Param("ranking", enum=["ranking", "rating"]),
    "train_overrides": Param([], type="array", description="`--set key=value` of recsys train"),
    "top_n": Param(10, type="integer", minimum=1, description="items per user"),
    "similar_items": Param(10, type="integer", minimum=0, description="0: no similar_items"),
    "warm_start": Param(True, type="boolean", description="start from last night's model"),
    "refit": Param(True, type="boolean", description="train on the held-out rows before scoring"),
    "refit_mode": Param("continue", enum=["continue", "full"]),
    "drift_min_share": Param(0.5, type="number", minimum=0, description="prepare's guard"),
    "publish_min_share": Param(0.5, type="number", minimum=0, description="publish's guard"),
    "move_latest_backwards": Param(False, type="boolean", description="a backfill moves _LATEST"),
    "gate_tolerance": Param(0.1, type="number", minimum=0),
    "gate_min_lift": Param(0.0, type="number"),
    "retention_days": Param(14, type="integer", minimum=0),
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
    @task(multiple_outputs=True)
    def source(params=None, dag_run=None, ds=None) -> dict[str, str]:
        """Fix the run's paths and bring the input: a path as is, a release name downloaded."""
        when = ds or (dag_run.logical_date or dag_run.run_after).strftime("%Y-%m-%d")
        run = re.sub(r"[^A-Za-z0-9._-]+", "_", dag_run.run_id).strip("_.")
        root = str(Path(params["root"]).absolute())
        data_dir = ENV.get("RECSYS_DATA_DIR") or str(Path(root).parent / "data")
        offline = ["--offline"] if params["offline"] else []
        got = _recsys("data", "get", params["dataset"], "--dest", data_dir, *offline)
        return {"root": root, "ds": when, "run": run, "input": got["input"]}

    xcom = "{{ ti.xcom_pull(task_ids='source', key='%s') }}"
    common = ["--root", xcom % "root", "--ds", xcom % "ds"]
    moves = ["--set", "move_latest_backwards={{ params.move_latest_backwards | lower }}"]
    prepare = RecsysSparkJob(
        step="prepare",
        execution_timeout=HEAVY,
        args=[
            *("--input", xcom % "input", *common, "--split", "{{ params.split }}"),
            *("--min-share", "{{ params.drift_min_share }}", *moves),
        ],
    )

    # Hands over {"model_ds", "model_run"}, as the refit does.
    train = RecsysTrainJob(execution_timeout=HEAVY)

    @task
    def evaluate(model: dict, paths: dict) -> None:
        _recsys("evaluate", *_at(paths, model["model_ds"]), "--run", model["model_run"])

    @task(retries=0)
    def gate(model: dict, paths: dict, params=None, ti=None) -> None:
        _recsys(
            *("gate", *_at(paths), "--run", attempt_run(paths["run"], ti.try_number)),
            *("--model-ds", model["model_ds"], "--model-run", model["model_run"]),
            *("--tolerance", str(params["gate_tolerance"])),
            *("--min-lift", str(params["gate_min_lift"])),
        )

    # The served model: the refit (param refit, as refit_mode says), else the evaluated one.
    refit = RecsysTrainJob(refit=True, execution_timeout=HEAVY)

    served = "{{ ti.xcom_pull(task_ids='refit')['model_%s'] }}"
    score = RecsysSparkJob(
        step="score",
        execution_timeout=HEAVY,
        args=[
            *(*common, "--model-ds", served % "ds", "--model-run", served % "run"),
            *("--top", "{{ params.top_n }}", "--similar-items", "{{ params.similar_items }}"),
            *moves,
        ],
    )

    @task
    def publish(paths: dict, scored: dict, params=None) -> dict[str, str]:
        """Validate the table this run scored, then make it live (unless a newer ds is)."""
        out = _recsys(
            *("publish", *_at(paths, scored["ds"]), "--run", scored["run"], *_moves(params)),
            *("--min-share", str(params["publish_min_share"])),
        )
        return {**scored, "path": out["path"], "live": out["moved"]}

    @task(outlets=[RECOMMENDATIONS])
    def announce(published: dict, outlet_events=None) -> None:
        """Tell downstream DAGs a new table is live; a backfill that left _LATEST is skipped."""
        if not published["live"]:
            raise AirflowSkipException("recommendations/_LATEST did not move (an older ds)")
        outlet_events[RECOMMENDATIONS].extra = {k: published[k] for k in ("ds", "run", "path")}

    @task
    def retention(paths: dict, params=None) -> None:
        _recsys("retention", *_at(paths), "--days", str(params["retention_days"]))

    paths = source()
    paths >> prepare
    [paths, prepare] >> train
    model = train.output
    checked = gate(model, paths)
    evaluate(model, paths) >> checked
    [paths, train, checked] >> refit >> score
    published = publish(paths, score.output)
    announce(published)
    published >> retention(paths)


recsys_nightly()
