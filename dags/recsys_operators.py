"""How the recsys DAG runs recsys: a command in its own process, a Spark job, the failure alert.

Every ``recsys`` command and Spark job hands its outcome back as JSON in the file
``$RECSYS_RESULT_FILE`` names (status, a one-sentence error, the outcome), never through its
printed text. Bad input (exit 2) and a refused gate (exit 3) fail the task without retry;
anything else (a crash, a killed process) is retried. With ``$RECSYS_REPORT`` set (``recsys
nightly`` sets it), each finished command appends its outcome to that file as a JSON line.
Imports nothing heavy: the DAG file imports this at parse time.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import get_current_context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

log = logging.getLogger("airflow.task")

ENV = os.environ
JOBS_DIR = Path(ENV.get("RECSYS_JOBS_DIR") or Path(__file__).resolve().parent.parent / "jobs")
NO_RETRY = (2, 3)  # exit statuses no retry fixes: bad input, a refused gate
SIZES = ("driver.memory", "executor.memory", "executor.cores", "cores.max")  # from the params
# A training job's executors run one TensorFlow worker each, on all their cores (spark.task.cpus),
# in a Python process outside the JVM heap (memoryOverhead, what YARN and Kubernetes count).
TRAIN_SIZES = {
    "spark.driver.memory": "{{ params.spark_driver_memory }}",
    "spark.executor.memory": "{{ params.train_executor_memory }}",
    "spark.executor.memoryOverhead": "{{ params.train_memory_overhead }}",
    "spark.executor.cores": "{{ params.train_executor_cores }}",
    "spark.task.cpus": "{{ params.train_executor_cores }}",
    "spark.cores.max": "{{ params.train_workers * params.train_executor_cores }}",
}


def alert(context) -> None:
    """Tell a person a run failed: $RECSYS_ALERT = log | email:<address> | <module>:<callable>."""
    target = ENV.get("RECSYS_ALERT", "log")
    ti = context.get("task_instance")
    what = f"recsys nightly {context.get('ds')}: task {getattr(ti, 'task_id', '?')} failed"
    reason = str(context.get("exception") or "")
    if target.startswith("email:"):  # through smtp_default; imported only when configured
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        to = target[len("email:") :]
        SmtpNotifier(to=to, subject=what, html_content=f"<pre>{reason}</pre>")(context)
    elif ":" in target:
        module, _, name = target.partition(":")
        getattr(importlib.import_module(module), name)(context)
    log.error("%s: %s", what, reason)


def attempt_run(base: str, try_number: int | None, suffix: str = "") -> str:
    """The run id one task attempt writes: the DAG run's, then ``.try<N>`` on a retry or after
    a clear, so a re-run never meets its own finished run (runs are immutable)."""
    run = f"{base}{suffix}"
    return run if not try_number or try_number <= 1 else f"{run}.try{try_number}"


def finish(what: str, code: int | None, result_file: Path, started: float) -> dict:
    """The outcome in ``result_file``; raises (without retry for 2 and 3) when ``code`` says the
    command failed, with the command's own sentence."""
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    outcome = result.get("outcome", {})
    error = result.get("error") or (f"{what} exited with status {code}" if code else "")
    if ENV.get("RECSYS_REPORT"):
        task_id = get_current_context()["ti"].task_id
        line = {"task": task_id, "status": code, "error": error, **outcome}
        line["seconds"] = round(time.monotonic() - started, 1)
        with open(ENV["RECSYS_REPORT"], "a") as report:
            report.write(json.dumps(line) + "\n")
    if code in NO_RETRY:
        raise AirflowFailException(error)
    if code:
        raise AirflowException(error)
    return outcome


def recsys_bin() -> str:
    """The recsys command: $RECSYS_BIN, else on PATH, else next to this interpreter."""
    here = str(Path(sys.executable).parent / "recsys")
    return ENV.get("RECSYS_BIN") or shutil.which("recsys") or here


def run_recsys(*args: str) -> dict:
    """Run one recsys command in its own process (its output goes to the task log); returns
    the outcome it wrote."""
    cmd = [recsys_bin(), *args]
    log.info("running %s", " ".join(cmd))
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        env = {"PYSPARK_PYTHON": sys.executable, **ENV, "RECSYS_RESULT_FILE": str(result)}
        pipe = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}
        proc = subprocess.Popen(cmd, env=env, **pipe)
        for line in proc.stdout or ():
            log.info("%s", line.rstrip("\n"))
        return finish(cmd[1], proc.wait(), result, started)


class RecsysSparkJob(SparkSubmitOperator):
    """``jobs/<step>.py`` through ``spark_default``, sized by the DAG's ``spark_*`` params:
    writes the run of this attempt (:func:`attempt_run`), returns ``{"ds", "run"}`` for the next
    task, and fails as the recsys commands do."""

    suffix = ""  # of the run id this task writes

    def __init__(
        self, *, step: str, args: list[str], conf: dict[str, str] | None = None, **kwargs
    ) -> None:
        sizes = {f"spark.{k}": "{{ params.spark_" + k.replace(".", "_") + " }}" for k in SIZES}
        env = {"PYSPARK_PYTHON": ENV.get("PYSPARK_PYTHON") or sys.executable}
        if "RECSYS_SPARK_LOG_LEVEL" in ENV:
            env["RECSYS_SPARK_LOG_LEVEL"] = ENV["RECSYS_SPARK_LOG_LEVEL"]
        kwargs.setdefault("task_id", step)
        super().__init__(
            application=str(JOBS_DIR / f"{step}.py"),
            name=f"recsys-{step}",
            py_files=ENV.get("RECSYS_PY_FILES") or None,
            conf={**(conf or sizes), "spark.ui.enabled": "false"},
            env_vars=env,
            application_args=args,
            **kwargs,
        )

    def more_args(self, context, ds: str, run: str) -> list[str]:
        """Arguments that come from XCom and params at run time (beyond the templated ones)."""
        return []

    def handover(self, ds: str, run: str) -> dict[str, str]:
        """What the next tasks pull from XCom."""
        return {"ds": ds, "run": run}

    def execute(self, context) -> dict[str, str]:
        ti = context["ti"]
        ds = ti.xcom_pull(task_ids="source", key="ds")
        run = attempt_run(ti.xcom_pull(task_ids="source", key="run"), ti.try_number, self.suffix)
        more = self.more_args(context, ds, run)
        self.application_args = [*(self.application_args or []), *more, "--run", run]
        started, code = time.monotonic(), 0
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            self.env_vars = {**(self.env_vars or {}), "RECSYS_RESULT_FILE": str(result)}
            try:
                super().execute(context)
            except AirflowException:
                code = getattr(getattr(self._hook, "_submit_sp", None), "returncode", None) or 1
            finish(self.task_id, code, result, started)
        return self.handover(ds, run)


class RecsysTrainJob(RecsysSparkJob):
    """``jobs/train.py``: the train step, or with ``refit=True`` the refit of the model the
    ``train`` task handed over (param ``refit`` false: that model is served as it is). A barrier
    stage of param ``train_workers`` executors sized by the ``train_*`` params; hands over
    ``{"model_ds", "model_run"}`` as the train and refit tasks always did."""

    def __init__(self, *, refit: bool = False, **kwargs) -> None:
        self.refit = refit
        self.suffix = "-refit" if refit else ""
        task_id = "refit" if refit else "train"
        super().__init__(step="train", task_id=task_id, args=[], conf=dict(TRAIN_SIZES), **kwargs)

    def more_args(self, context, ds: str, run: str) -> list[str]:
        params, ti = context["params"], context["ti"]
        backwards = str(bool(params["move_latest_backwards"])).lower()
        sets = [f"train.workers={params['train_workers']}", f"move_latest_backwards={backwards}"]
        at = ["--root", ti.xcom_pull(task_ids="source", key="root"), "--ds", ds]
        if self.refit:
            model = ti.xcom_pull(task_ids="train")
            sets.append(f"train.refit_mode={params['refit_mode']}")
            refit = ["--refit", "--refit-ds", model["model_ds"], "--refit-run", model["model_run"]]
            return [*refit, *at, *(a for s in sets for a in ("--set", s))]
        prepared = ti.xcom_pull(task_ids="prepare")
        sets = [f"train.warm_start={str(params['warm_start']).lower()}", *sets]
        sets += list(params["train_overrides"])
        return [
            *(*at, *(a for s in sets for a in ("--set", s))),
            *("--prepared-ds", prepared["ds"], "--prepared-run", prepared["run"]),
            *("--model", params["model"], "--objective", params["objective"]),
        ]

    def handover(self, ds: str, run: str) -> dict[str, str]:
        return {"model_ds": ds, "model_run": run}

    def execute(self, context) -> dict[str, str]:
        if self.refit and not context["params"]["refit"]:
            return context["ti"].xcom_pull(task_ids="train")
        return super().execute(context)


def store_url(conn_id: str) -> tuple[str, str]:
    """An Airflow connection (postgres or redis) as a ``recsys export --to`` URL, and its
    password apart: the task hands it over in ``$RECSYS_STORE_PASSWORD``, never on a command
    line that the task log shows."""
    from urllib.parse import quote

    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    scheme = {"postgres": "postgresql", "postgresql": "postgresql", "redis": "redis"}.get(
        conn.conn_type
    )
    if scheme is None:
        raise AirflowFailException(
            f"connection {conn_id!r} is of type {conn.conn_type!r}; param export_to takes "
            "postgres and redis connections"
        )
    db = conn.schema if scheme == "postgresql" else conn.extra_dejson.get("db", conn.schema or 0)
    login = f"{quote(conn.login, safe='')}@" if conn.login else ""
    port = f":{conn.port}" if conn.port else ""
    return f"{scheme}://{login}{conn.host or '127.0.0.1'}{port}/{db}", conn.password or ""
