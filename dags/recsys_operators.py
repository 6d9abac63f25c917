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


def spark_sizes(params) -> dict[str, str]:
    """The ``spark.*`` sizes of a Spark job, from the ``spark_*`` params."""
    return {f"spark.{k}": str(params["spark_" + k.replace(".", "_")]) for k in SIZES}


def train_sizes(params) -> dict[str, str]:
    """A training job's executors run one TensorFlow worker each, on all their cores
    (spark.task.cpus), in a Python process outside the JVM heap (memoryOverhead, what YARN and
    Kubernetes count)."""
    cores = int(params["train_executor_cores"])
    return {
        "spark.driver.memory": str(params["spark_driver_memory"]),
        "spark.executor.memory": str(params["train_executor_memory"]),
        "spark.executor.memoryOverhead": str(params["train_memory_overhead"]),
        "spark.executor.cores": str(cores),
        "spark.task.cpus": str(cores),
        "spark.cores.max": str(int(params["train_workers"]) * cores),
    }


def at(paths: dict, ds: str | None = None) -> list[str]:
    """``--root`` and ``--ds`` of a command: the run's root, and its ds unless another is given."""
    return ["--root", paths["root"], "--ds", ds or paths["ds"]]


def moves(params) -> list[str]:
    """``--set`` of every committing command: may a backfill move _LATEST?"""
    return ["--set", f"move_latest_backwards={str(bool(params['move_latest_backwards'])).lower()}"]


def sets(*pairs: str) -> list[str]:
    """``--set key=value`` of each pair."""
    return [a for pair in pairs for a in ("--set", pair)]


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
    command failed, with the command's own sentence. ``code`` None: it failed with the status it
    wrote in ``result_file`` (1 when it wrote none: a crash, a killed process)."""
    result = json.loads(result_file.read_text()) if result_file.is_file() else {}
    if code is None:
        code = int(result.get("status") or 1)
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
    """``jobs/<step>.py`` through ``spark_default``: what upstream tasks handed over arrives in
    ``inputs`` (a dict of their outputs, resolved by Airflow like any templated field, which also
    makes them upstream tasks); ``command`` builds the step's arguments from it and the params.
    Writes the run of this attempt (:func:`attempt_run`), returns ``{"ds", "run"}`` for the next
    task, and fails as the recsys commands do (the status the job wrote, not spark-submit's)."""

    template_fields = (*SparkSubmitOperator.template_fields, "inputs")
    step = ""  # jobs/<step>.py
    suffix = ""  # of the run id this task writes

    def __init__(self, *, inputs: dict, **kwargs) -> None:
        env = {"PYSPARK_PYTHON": ENV.get("PYSPARK_PYTHON") or sys.executable}
        if "RECSYS_SPARK_LOG_LEVEL" in ENV:
            env["RECSYS_SPARK_LOG_LEVEL"] = ENV["RECSYS_SPARK_LOG_LEVEL"]
        kwargs.setdefault("task_id", self.step)
        super().__init__(
            application=str(JOBS_DIR / f"{self.step}.py"),
            name=f"recsys-{self.step}",
            py_files=ENV.get("RECSYS_PY_FILES") or None,
            env_vars=env,
            **kwargs,
        )
        self.inputs = inputs

    def command(self, params) -> list[str]:
        """The job's arguments from ``self.inputs`` (resolved) and the params, but ``--run``."""
        raise NotImplementedError

    def sizes(self, params) -> dict[str, str]:
        return spark_sizes(params)

    def handover(self, ds: str, run: str) -> dict[str, str]:
        """What the next tasks receive."""
        return {"ds": ds, "run": run}

    def execute(self, context) -> dict[str, str]:
        params, paths = context["params"], self.inputs["paths"]
        run = attempt_run(paths["run"], context["ti"].try_number, self.suffix)
        self.conf = {**self.sizes(params), "spark.ui.enabled": "false"}
        self.application_args = [*self.command(params), "--run", run]
        started, code = time.monotonic(), 0
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            self.env_vars = {**(self.env_vars or {}), "RECSYS_RESULT_FILE": str(result)}
            try:
                super().execute(context)
            except AirflowException:
                code = None  # the status the job wrote says whether a retry may help
            finish(self.task_id, code, result, started)
        return self.handover(paths["ds"], run)


class PrepareJob(RecsysSparkJob):
    """``jobs/prepare.py`` of the input ``source`` brought (inputs: ``paths``)."""

    step = "prepare"

    def command(self, params) -> list[str]:
        paths = self.inputs["paths"]
        gap = ["--gap", params["split_gap"]] if params["split"] == "return" else []
        return [
            *("--input", paths["input"], *at(paths), "--split", params["split"], *gap),
            *("--min-share", str(params["drift_min_share"]), *moves(params)),
        ]


class TrainJob(RecsysSparkJob):
    """``jobs/train.py`` on the prepared run (inputs: ``paths``, ``prepared``): a barrier stage
    of param ``train_workers`` executors sized by the ``train_*`` params; hands over
    ``{"model_ds", "model_run"}``."""

    step = "train"

    def sizes(self, params) -> dict[str, str]:
        return train_sizes(params)

    def common(self, params) -> list[str]:
        workers = f"train.workers={params['train_workers']}"
        return [*at(self.inputs["paths"]), *sets(workers), *moves(params)]

    def command(self, params) -> list[str]:
        prepared = self.inputs["prepared"]
        warm = f"train.warm_start={str(bool(params['warm_start'])).lower()}"
        return [
            *self.common(params),
            *sets(warm, *params["train_overrides"]),
            *("--prepared-ds", prepared["ds"], "--prepared-run", prepared["run"]),
            *("--model", params["model"], "--objective", params["objective"]),
        ]

    def handover(self, ds: str, run: str) -> dict[str, str]:
        return {"model_ds": ds, "model_run": run}


class RefitJob(TrainJob):
    """``jobs/train.py --refit`` of the model ``train`` handed over (inputs: ``paths``,
    ``trained``), as param ``refit_mode`` says; runs only when the ``refit`` branch chose it."""

    suffix = "-refit"

    def __init__(self, **kwargs) -> None:
        super().__init__(task_id="refit", **kwargs)

    def command(self, params) -> list[str]:
        model = self.inputs["trained"]
        refit = ["--refit", "--refit-ds", model["model_ds"], "--refit-run", model["model_run"]]
        return [*refit, *self.common(params), *sets(f"train.refit_mode={params['refit_mode']}")]


class ScoreJob(RecsysSparkJob):
    """``jobs/score.py`` of the served model (inputs: ``paths``, ``trained``, ``refitted``): the
    refit when it ran, else the trained model (a skipped task hands over None)."""

    step = "score"

    def command(self, params) -> list[str]:
        paths = self.inputs["paths"]
        model = self.inputs.get("refitted") or self.inputs["trained"]
        return [
            *(*at(paths), "--model-ds", model["model_ds"], "--model-run", model["model_run"]),
            *("--top", str(params["top_n"]), "--similar-items", str(params["similar_items"])),
            *("--extra", str(params["serve_extra"]), *moves(params)),
        ]


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
