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
| `announce` | the `recsys_recommendations` Asset event, when the table went live | |
| `retention` | `recsys retention`: runs older than `retention_days`, never those in use | |

A refused gate, or an input or table that shrank below `drift_min_share` / `publish_min_share` of
yesterday's, fails the run without retry; nothing after it runs and yesterday's table stays
published. Every task attempt writes runs of its own (`<run id>`, then `<run id>.try<N>` when a
task is cleared or retried) and hands their ids to the next task, so clearing any task, or the
whole run, re-runs it and publishes as a first run would. A backfill (an older `ds`) commits its
runs without moving any table's `_LATEST` unless param `move_latest_backwards` is on. Spark steps
go through the `spark_default` connection (local mode by default; point it at a cluster to move
them). Parsing this file imports nothing heavy and queries no database.

Environment (all optional): `RECSYS_ROOT` (storage root), `RECSYS_BIN` (the `recsys` command),
`RECSYS_JOBS_DIR` (folder of `prepare.py` / `score.py`), `RECSYS_PY_FILES` (zip or wheel for the
executors), `RECSYS_DATA_DIR`, `RECSYS_ALERT` (`log`, `email:a@b.c`, or `module:callable`),
`RECSYS_SCHEDULE` (`@daily`; `none`: triggered runs only), `RECSYS_RETRIES` (2),
`RECSYS_TIMEOUT_HOURS` (6: the heavy tasks' `execution_timeout`; the light ones get 1 hour).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

log = logging.getLogger("airflow.task")

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
ENV = os.environ
JOBS_DIR = Path(ENV.get("RECSYS_JOBS_DIR") or CHECKOUT / "jobs")
DEFAULT_ROOT = ENV.get("RECSYS_ROOT") or str(CHECKOUT / "var")
PY_FILES = ENV.get("RECSYS_PY_FILES") or None
RETRIES = int(ENV.get("RECSYS_RETRIES", "2"))
SCHEDULE = ENV.get("RECSYS_SCHEDULE", "@daily")  # "none": only triggered runs
HEAVY = dt.timedelta(hours=float(ENV.get("RECSYS_TIMEOUT_HOURS", "6")))
LIGHT = dt.timedelta(hours=1)
# Downstream DAGs schedule on it (by name); each event's extra names the table that went live.
RECOMMENDATIONS = Asset(
    name="recsys_recommendations", uri=f"file://{Path(DEFAULT_ROOT).absolute()}/recommendations"
)
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
        # Through the smtp_default connection; imported only when configured.
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(to=target[len("email:") :], subject=what, html_content=f"<pre>{reason}</pre>")(
            context
        )
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


def _run_recsys_for(*args: str) -> dict:
    """Run a recsys command that writes its outcome as JSON to ``--result-file``; return it
    (structured hand-over: nothing is read from the command's printed text)."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        _run_recsys(*args, "--result-file", str(result))
        return json.loads(result.read_text())


def _child_env() -> dict[str, str]:
    env = dict(ENV)
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def attempt_run(base: str, try_number: int | None, suffix: str = "") -> str:
    """The run id one task attempt writes: the DAG run's, then ``.try<N>`` on a retry or after
    a clear, so a re-run never meets its own finished run (runs are immutable)."""
    run = f"{base}{suffix}"
    return run if not try_number or try_number <= 1 else f"{run}.try{try_number}"


def _xcom(key: str) -> str:
    return "{{ ti.xcom_pull(task_ids='source', key='" + key + "') }}"


def _flags(params) -> list[str]:
    """`--set` pairs every committing command gets from the params."""
    backwards = str(bool(params["move_latest_backwards"])).lower()
    return ["--set", f"move_latest_backwards={backwards}"]


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


class RecsysSparkJob(SparkSubmitOperator):
    """``jobs/<step>.py`` through ``spark_default``: writes the run of this attempt (see
    :func:`attempt_run`), returns ``{"ds", "run"}`` for the next task, and fails without retry
    on bad input (exit 2), as the recsys commands do."""

    def execute(self, context) -> dict[str, str]:
        ti = context["ti"]
        ds = ti.xcom_pull(task_ids="source", key="ds")
        run = attempt_run(ti.xcom_pull(task_ids="source", key="run"), ti.try_number)
        self.application_args = [*(self.application_args or []), "--run", run]
        try:
            super().execute(context)
        except AirflowException as exc:
            proc = getattr(self._hook, "_submit_sp", None)
            if proc is not None and proc.returncode == BAD_INPUT:
                said = [ln for ln in str(exc).splitlines() if ": error: " in ln]
                raise AirflowFailException((said or [str(exc)])[-1].strip()) from exc
            raise
        return {"ds": ds, "run": run}


def _spark_job(step: str, args: list[str]) -> RecsysSparkJob:
    """``jobs/<step>.py`` through the ``spark_default`` connection, sized by the params."""
    return RecsysSparkJob(
        task_id=step,
        application=str(JOBS_DIR / f"{step}.py"),
        name=f"recsys-{step}",
        py_files=PY_FILES,
        conf=_spark_conf(),
        env_vars=_spark_env(),
        application_args=args,
        execution_timeout=HEAVY,
    )


@dag(
    dag_id="recsys_nightly",
    schedule=None if SCHEDULE.lower() == "none" else SCHEDULE,
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
        "execution_timeout": LIGHT,
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
        "warm_start": Param(
            True, type="boolean", description="start training from the model served last night"
        ),
        "refit": Param(True, type="boolean", description="retrain on every split before scoring"),
        "refit_mode": Param(
            "continue",
            enum=["full", "continue"],
            description="full: anew on every split; continue: the evaluated model, val+test rows",
        ),
        "drift_min_share": Param(
            0.5,
            type="number",
            minimum=0,
            description="prepare refuses rows/users/items below this share of yesterday's",
        ),
        "publish_min_share": Param(
            0.5,
            type="number",
            minimum=0,
            description="publish refuses a table with fewer users than this share of the live one",
        ),
        "move_latest_backwards": Param(
            False, type="boolean", description="let a backfill of an older ds move _LATEST"
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
        got = _run_recsys_for(*args, *(["--offline"] if params["offline"] else []))
        return {"root": root, "ds": when, "run": run, "input": got["input"]}

    paths = source()
    common = ["--root", _xcom("root"), "--ds", _xcom("ds")]
    moves = ["--set", "move_latest_backwards={{ params.move_latest_backwards | lower }}"]
    prepare = _spark_job(
        "prepare",
        [
            "--input",
            _xcom("input"),
            *common,
            "--split",
            "{{ params.split }}",
            "--min-share",
            "{{ params.drift_min_share }}",
            *moves,
        ],
    )

    @task(execution_timeout=HEAVY)
    def train(paths: dict, prepared: dict, params=None, ti=None) -> dict[str, str]:
        run = attempt_run(paths["run"], ti.try_number)
        warm = f"train.warm_start={str(params['warm_start']).lower()}"
        sets = [a for kv in [warm, *params["train_overrides"]] for a in ("--set", kv)]
        _run_recsys(
            "train",
            *("--root", paths["root"], "--ds", paths["ds"], "--run", run),
            *("--prepared-ds", prepared["ds"], "--prepared-run", prepared["run"]),
            *("--model", params["model"], "--objective", params["objective"]),
            *sets,
            *_flags(params),
        )
        return {"model_ds": paths["ds"], "model_run": run}

    @task
    def evaluate(model: dict, paths: dict) -> None:
        _run_recsys(
            "evaluate",
            *("--root", paths["root"], "--ds", model["model_ds"], "--run", model["model_run"]),
        )

    @task(retries=0)
    def gate(model: dict, paths: dict, params=None, ti=None) -> None:
        _run_recsys(
            "gate",
            *("--root", paths["root"], "--ds", paths["ds"]),
            *("--run", attempt_run(paths["run"], ti.try_number)),
            *("--model-ds", model["model_ds"], "--model-run", model["model_run"]),
            *("--tolerance", str(params["gate_tolerance"])),
            *("--min-lift", str(params["gate_min_lift"])),
        )

    @task(execution_timeout=HEAVY)
    def refit(model: dict, paths: dict, params=None, ti=None) -> dict[str, str]:
        """The served model: refit (param refit, as refit_mode says), else the evaluated one."""
        if not params["refit"]:
            return model
        run = attempt_run(paths["run"], ti.try_number, "-refit")
        _run_recsys(
            "train",
            "--refit",
            *("--refit-ds", model["model_ds"], "--refit-run", model["model_run"]),
            *("--root", paths["root"], "--ds", paths["ds"], "--run", run),
            *("--set", f"train.refit_mode={params['refit_mode']}"),
            *_flags(params),
        )
        return {"model_ds": paths["ds"], "model_run": run}

    score = _spark_job(
        "score",
        [
            *common,
            "--model-ds",
            "{{ ti.xcom_pull(task_ids='refit')['model_ds'] }}",
            "--model-run",
            "{{ ti.xcom_pull(task_ids='refit')['model_run'] }}",
            "--top",
            "{{ params.top_n }}",
            "--similar-items",
            "{{ params.similar_items }}",
            *moves,
        ],
    )

    @task
    def publish(paths: dict, scored: dict, params=None) -> dict[str, str]:
        """Validate the table this run scored, then make it live (unless a newer ds is)."""
        out = _run_recsys_for(
            "publish",
            *("--root", paths["root"], "--ds", scored["ds"], "--run", scored["run"]),
            *("--min-share", str(params["publish_min_share"])),
            *_flags(params),
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
        _run_recsys(
            "retention",
            *("--root", paths["root"], "--ds", paths["ds"]),
            *("--days", str(params["retention_days"])),
        )

    paths >> prepare
    model = train(paths, prepare.output)
    checked = gate(model, paths)
    evaluate(model, paths) >> checked
    served = refit(model, paths)
    checked >> served >> score
    published = publish(paths, score.output)
    announce(published)
    published >> retention(paths)


recsys_nightly()
