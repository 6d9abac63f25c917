"""
### recsys nightly

Every night, for the run's logical date `ds`:

| task | runs | writes |
| --- | --- | --- |
| `source` | `recsys data get`: a release (synthetic offline), or a path | paths (XCom) |
| `prepare` | Spark: `jobs/prepare.py` | `prepared/ds=…/run=…` |
| `train` | TensorFlow: `recsys train`, warm-started with param `warm_start` | `models/ds=…/run=…` |
| `evaluate` | `recsys evaluate`: test metrics next to the baselines (log) | |
| `gate` | `recsys gate`: refuses a model below popularity or the published one | `gates/…` |
| `refit` | `recsys train --refit` (params `refit`, `refit_mode`) | `models/ds=…/run=…-refit` |
| `score` | Spark: `jobs/score.py`: top N of all unseen pairs, nearest items | `recommendations/…` |
| `publish` | `recsys publish`: validates, then moves `recommendations/_LATEST` | |
| `retention` | `recsys retention`: runs older than `retention_days`, never those in use | |

A refused gate fails the run without retry; nothing after it runs and yesterday's table stays
published. Spark steps go through the `spark_default` connection (local mode by default; point it
at a cluster to move them). Parsing this file imports nothing heavy and queries no database.

Environment (all optional): `RECSYS_ROOT` (storage root), `RECSYS_BIN` (the `recsys` command),
`RECSYS_JOBS_DIR` (folder of `prepare.py` / `score.py`), `RECSYS_PY_FILES` (zip or wheel for the
executors), `RECSYS_DATA_DIR`, `RECSYS_ALERT` (`log`, `email:a@b.c`, or `module:callable`),
`RECSYS_SCHEDULE` (`@daily`), `RECSYS_RETRIES` (2).
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

log = logging.getLogger("airflow.task")

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
ENV = os.environ
JOBS_DIR = Path(ENV.get("RECSYS_JOBS_DIR") or CHECKOUT / "jobs")
DEFAULT_ROOT = ENV.get("RECSYS_ROOT") or str(CHECKOUT / "var")
PY_FILES = ENV.get("RECSYS_PY_FILES") or None
RETRIES = int(ENV.get("RECSYS_RETRIES", "2"))
# Exit statuses of the recsys command that no retry can fix (see recsys/cli.py).
BAD_INPUT, GATE_REFUSED = 2, 3


def _recsys_bin() -> str:
    """The recsys command: $RECSYS_BIN, else on PATH, else next to this interpreter."""
    return (
        ENV.get("RECSYS_BIN")
        or shutil.which("recsys")
        or str(Path(sys.executable).parent / "recsys")
    )


def _alert(context) -> None:
    """Tell a person a run failed: $RECSYS_ALERT = log | email:<address> | <module>:<callable>."""
    target = ENV.get("RECSYS_ALERT", "log")
    ti = context.get("task_instance")
    what = f"recsys nightly {context.get('ds')}: task {getattr(ti, 'task_id', '?')} failed"
    reason = str(context.get("exception") or "")
    if target.startswith("email:"):
        from airflow.utils.email import send_email  # only when configured

        send_email(target[len("email:") :], what, f"<pre>{reason}</pre>")
    elif ":" in target:
        module, _, name = target.partition(":")
        getattr(importlib.import_module(module), name)(context)
    log.error("%s: %s", what, reason)


def _run_recsys(*args: str) -> str:
    """Run one recsys command in its own process; its output goes to the task log.

    Bad input (exit 2) and a refused gate (exit 3) fail the task without retry; anything else
    (a crash, a killed process) is retried.
    """
    cmd = [_recsys_bin(), *args]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_child_env()
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        log.info("%s", lines[-1])
    code = proc.wait()
    if code == 0:
        return "\n".join(lines)
    said = [ln for ln in lines if ln.startswith("recsys ")] or lines[-1:] or ["(no output)"]
    if code in (BAD_INPUT, GATE_REFUSED):
        raise AirflowFailException(said[-1] if code == BAD_INPUT else " ".join(said))
    raise AirflowException(f"{cmd[1]} exited with status {code}: {said[-1]}")


def _child_env() -> dict[str, str]:
    env = dict(ENV)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def _xcom(key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='source', key='" + key + "') }}"


def _spark_conf() -> dict[str, str]:
    return {
        "spark.driver.memory": "{{ params.spark_driver_memory }}",
        "spark.executor.memory": "{{ params.spark_executor_memory }}",
        "spark.executor.cores": "{{ params.spark_executor_cores }}",
        "spark.cores.max": "{{ params.spark_cores_max }}",
        "spark.ui.enabled": "false",
    }


def _spark_env() -> dict[str, str]:
    env = {"PYSPARK_PYTHON": ENV.get("PYSPARK_PYTHON") or sys.executable}
    if "RECSYS_SPARK_LOG_LEVEL" in ENV:
        env["RECSYS_SPARK_LOG_LEVEL"] = ENV["RECSYS_SPARK_LOG_LEVEL"]
    return env


def _spark_job(step: str, args: list[str]) -> SparkSubmitOperator:
    """``jobs/<step>.py`` through the ``spark_default`` connection, sized by the params."""
    return SparkSubmitOperator(
        task_id=step,
        application=str(JOBS_DIR / f"{step}.py"),
        name=f"recsys-{step}",
        py_files=PY_FILES,
        conf=_spark_conf(),
        env_vars=_spark_env(),
        application_args=args,
    )


@dag(
    dag_id="recsys_nightly",
    schedule=ENV.get("RECSYS_SCHEDULE", "@daily"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["recsys", "recommendations", "spark", "tensorflow"],
    doc_md=__doc__,
    default_args={
        "retries": RETRIES,
        "retry_delay": dt.timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": dt.timedelta(hours=1),
        "on_failure_callback": _alert,
    },
    params={
        "root": Param(DEFAULT_ROOT, type="string", description="storage root of every table"),
        "dataset": Param(
            "ml-latest-small",
            type="string",
            description="MovieLens release name (downloaded; synthetic when offline) or a path",
        ),
        "offline": Param(False, type="boolean", description="never download; synthesise"),
        "split": Param("leave-last", enum=["leave-last", "temporal", "random", "stratified"]),
        "model": Param("biased-mf", enum=["biased-mf", "mf", "ncf", "neumf"]),
        "objective": Param("ranking", enum=["ranking", "rating"]),
        "train_overrides": Param(
            [], type="array", description="extra `--set key=value` of recsys train"
        ),
        "top_n": Param(10, type="integer", minimum=1, description="items per user"),
        "similar_items": Param(
            10, type="integer", minimum=0, description="nearest items per item (0: no table)"
        ),
        # Off until it matches a cold start on later rows (docs/training-throughput.md).
        "warm_start": Param(
            False, type="boolean", description="start training from the model served last night"
        ),
        "refit": Param(True, type="boolean", description="retrain on every split before scoring"),
        "refit_mode": Param(
            "full",
            enum=["full", "continue"],
            description="full: anew on every split; continue: the evaluated model, val+test rows",
        ),
        "gate_tolerance": Param(0.1, type="number", minimum=0),
        "gate_min_lift": Param(0.0, type="number"),
        "retention_days": Param(14, type="integer", minimum=0),
        "spark_driver_memory": Param("4g", type="string"),
        "spark_executor_memory": Param("2g", type="string"),
        "spark_executor_cores": Param(1, type="integer", minimum=1),
        "spark_cores_max": Param(2, type="integer", minimum=1),
    },
)
def recsys_nightly():
    @task(multiple_outputs=True)
    def source(params=None, dag_run=None, ds=None) -> dict[str, str]:
        """Fix the run's paths and bring the input: a path as is, a release name downloaded."""
        when = ds or (dag_run.logical_date or dag_run.run_after).strftime("%Y-%m-%d")
        run = re.sub(r"[^A-Za-z0-9._-]+", "_", dag_run.run_id).strip("_.")
        root = str(Path(params["root"]).absolute())
        data_dir = ENV.get("RECSYS_DATA_DIR") or str(Path(root).parent / "data")
        args = ["data", "get", params["dataset"], "--dest", data_dir]
        out = _run_recsys(*args, *(["--offline"] if params["offline"] else []))
        found = [ln.strip() for ln in out.splitlines() if ln.strip() and Path(ln.strip()).exists()]
        if not found:
            raise AirflowFailException(f"recsys data get named no input folder:\n{out}")
        return {"root": root, "ds": when, "run": run, "input": found[-1]}

    paths = source()
    root, ds, run = _xcom("root"), _xcom("ds"), _xcom("run")
    common = ["--root", root, "--ds", ds]

    prepare = _spark_job(
        "prepare",
        [
            "--input",
            _xcom("input"),
            *common,
            "--run",
            run,
            "--split",
            "{{ params.split }}",
        ],
    )

    @task
    def train(paths: dict, params=None) -> dict[str, str]:
        warm = f"train.warm_start={str(params['warm_start']).lower()}"
        sets = [a for kv in [warm, *params["train_overrides"]] for a in ("--set", kv)]
        _run_recsys(
            "train",
            "--root",
            paths["root"],
            "--ds",
            paths["ds"],
            "--run",
            paths["run"],
            "--prepared-ds",
            paths["ds"],
            "--prepared-run",
            paths["run"],
            "--model",
            params["model"],
            "--objective",
            params["objective"],
            *sets,
        )
        return {"model_ds": paths["ds"], "model_run": paths["run"]}

    @task
    def evaluate(model: dict, paths: dict) -> None:
        _run_recsys(
            "evaluate",
            "--root",
            paths["root"],
            "--ds",
            model["model_ds"],
            "--run",
            model["model_run"],
        )

    @task(retries=0)
    def gate(model: dict, paths: dict, params=None) -> None:
        _run_recsys(
            "gate",
            "--root",
            paths["root"],
            "--model-ds",
            model["model_ds"],
            "--model-run",
            model["model_run"],
            "--ds",
            paths["ds"],
            "--run",
            paths["run"],
            "--tolerance",
            str(params["gate_tolerance"]),
            "--min-lift",
            str(params["gate_min_lift"]),
        )

    @task
    def refit(model: dict, paths: dict, params=None) -> dict[str, str]:
        """The served model: refit (param refit, as refit_mode says), else the evaluated one."""
        if not params["refit"]:
            return model
        run = f"{paths['run']}-refit"
        _run_recsys(
            "train",
            "--refit",
            "--refit-ds",
            model["model_ds"],
            "--refit-run",
            model["model_run"],
            "--root",
            paths["root"],
            "--ds",
            paths["ds"],
            "--run",
            run,
            "--set",
            f"train.refit_mode={params['refit_mode']}",
        )
        return {"model_ds": paths["ds"], "model_run": run}

    score = _spark_job(
        "score",
        [
            *common,
            "--run",
            run,
            "--model-ds",
            "{{ ti.xcom_pull(task_ids='refit')['model_ds'] }}",
            "--model-run",
            "{{ ti.xcom_pull(task_ids='refit')['model_run'] }}",
            "--top",
            "{{ params.top_n }}",
            "--similar-items",
            "{{ params.similar_items }}",
        ],
    )

    @task
    def publish(paths: dict) -> str:
        _run_recsys("publish", "--root", paths["root"], "--ds", paths["ds"], "--run", paths["run"])
        return f"{paths['root']}/recommendations/ds={paths['ds']}/run={paths['run']}"

    @task
    def retention(paths: dict, params=None) -> None:
        _run_recsys(
            "retention",
            "--root",
            paths["root"],
            "--ds",
            paths["ds"],
            "--days",
            str(params["retention_days"]),
        )

    model = train(paths)
    prepare >> model
    paths >> prepare
    checked = gate(model, paths)
    evaluate(model, paths) >> checked
    served = refit(model, paths)
    checked >> served >> score >> publish(paths) >> retention(paths)


recsys_nightly()
