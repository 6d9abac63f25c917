"""``recsys nightly``: run the Airflow DAG once, here, on SQLite (what ``make run`` calls).

Sets up an Airflow home under the storage root (``<root>/airflow``: SQLite metadata, no
examples, this checkout's ``dags/``), a local ``spark_default`` connection (``local[2]``) unless
one is configured, then runs ``airflow db migrate`` and ``airflow dags test recsys_nightly <ds>``
in child processes. Airflow's own output goes to ``<root>/airflow/logs/nightly-<ds>-<time>.log``.
Nothing is read from it: each finished command appends its outcome to a JSON-lines report
(``$RECSYS_REPORT``), echoed as it arrives, and the tasks' states and times come from Airflow
(``airflow tasks states-for-dag-run``); on failure the reason is the failed command's sentence.

This module never imports Airflow: the Airflow CLI runs in its own process, as a scheduler would
run the tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys import storage
from recsys.errors import RecsysError

DAG_ID = "recsys_nightly"
LOCAL_SPARK = '{"conn_type": "spark", "host": "local[2]"}'
NOT_RUN = ("", "none", "upstream_failed", "removed")  # task states of tasks that never ran
DONE = ("success", "skipped")  # a skipped task was left out on purpose (refit off, a backfill)


def dags_folder() -> Path:
    """$RECSYS_DAGS_DIR, else the checkout's dags/ next to this package."""
    folder = Path(os.environ.get("RECSYS_DAGS_DIR") or Path(__file__).resolve().parents[1] / "dags")
    if not (folder / f"{DAG_ID}.py").is_file():
        raise RecsysError(
            f"{folder / (DAG_ID + '.py')} does not exist; run from a checkout of recsys or set "
            "RECSYS_DAGS_DIR to the folder holding the DAG"
        )
    return folder


def airflow_env(root: Path, home: Path) -> dict[str, str]:
    """The child environment: this venv first on PATH, a local Airflow home, local Spark."""
    bin_dir = str(Path(sys.executable).parent)
    env = dict(os.environ)
    env.update(
        AIRFLOW_HOME=str(home),
        PATH=bin_dir + os.pathsep + env.get("PATH", ""),
        RECSYS_ROOT=str(root),
        RECSYS_BIN=env.get("RECSYS_BIN") or str(Path(bin_dir) / "recsys"),
        PYSPARK_PYTHON=env.get("PYSPARK_PYTHON") or sys.executable,
    )
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(dags_folder()))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    env.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
    env.setdefault("AIRFLOW_CONN_SPARK_DEFAULT", LOCAL_SPARK)
    # One run by hand: a failure should say so now, not after retries with backoff.
    env.setdefault("RECSYS_RETRIES", "0")
    env.setdefault("RECSYS_SPARK_LOG_LEVEL", "WARN")
    return env


@dataclass
class TaskTime:
    task: str
    state: str = "running"
    seconds: float = 0.0


@dataclass
class NightlyResult:
    ok: bool
    ds: str
    seconds: float
    log: Path
    tasks: list[TaskTime] = field(default_factory=list)
    reason: str = ""


def task_states(stdout: str) -> list[TaskTime]:
    """The tasks that ran, with state and seconds, from ``airflow tasks states-for-dag-run
    --output json``, in start order."""
    rows: list[dict[str, Any]] = []
    at = stdout.find("[")
    while at >= 0 and not rows:  # the JSON array, past any line Airflow printed before it
        try:
            found = json.JSONDecoder().raw_decode(stdout[at:])[0]
            rows = found if isinstance(found, list) and all("task_id" in r for r in found) else []
        except ValueError:
            pass
        at = stdout.find("[", at + 1)
    tasks = []
    for row in sorted(rows, key=lambda r: r.get("start_date") or ""):
        if (row.get("state") or "") in NOT_RUN:
            continue
        began, ended = row.get("start_date"), row.get("end_date")
        seconds = (_ts(ended) - _ts(began)) if began and ended else 0.0
        tasks.append(TaskTime(row["task_id"], row["state"], seconds))
    return tasks


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_report(path: Path, skip: int = 0) -> list[dict[str, Any]]:
    """The JSON lines the DAG's commands appended to ``$RECSYS_REPORT`` after the first
    ``skip`` (a line being written is left for the next read)."""
    if not path.is_file():
        return []
    lines = path.read_text().splitlines(keepends=True)[skip:]
    return [json.loads(line) for line in lines if line.endswith("\n")]


def echo_entry(entry: dict[str, Any], echo=print) -> None:
    """One finished command at the terminal: the note it brought (synthetic data), then
    ``<task> <state> <seconds> s``."""
    if entry.get("note"):
        echo(f"  {entry['note']}")
    state = "success" if not entry.get("status") else "failed"
    echo(f"  {entry['task']:10} {state:8} {float(entry.get('seconds', 0)):7.1f} s")


def outcome(tasks: list[TaskTime], report: list[dict[str, Any]], code: int) -> tuple[bool, str]:
    """Whether the run succeeded (Airflow's task states) and, if not, why: the first command's
    own sentence, else the failed task, else the exit status."""
    ok = code == 0 and bool(tasks) and all(t.state in DONE for t in tasks)
    if ok:
        return True, ""
    said = [e["error"] for e in report if e.get("error")]
    failed = [f"task {t.task} {t.state}" for t in tasks if t.state not in DONE]
    return False, (said or failed or [f"airflow dags test exited with status {code}"])[0]


def _follow(proc: subprocess.Popen, report: Path, echo) -> None:
    """Echo each command as it finishes, from the report file, until the run ends."""
    done = 0
    while True:
        finished = proc.poll() is not None
        for entry in read_report(report, done):
            echo_entry(entry, echo)
            done += 1
        if finished:
            return
        time.sleep(1.0)


def run_nightly(
    root: str,
    ds: str | None = None,
    params: dict[str, Any] | None = None,
    echo=print,
) -> NightlyResult:
    """Run the DAG once for ``ds`` with ``params``; report each task as it ends."""
    from recsys.spark import check_java

    check_java()  # fail here, in one sentence, rather than inside the first Spark task
    ds = storage.check_ds(ds or storage.today_utc())
    base = storage.local_root(root)
    home = base / "airflow"
    (home / "logs").mkdir(parents=True, exist_ok=True)
    env = airflow_env(base, home)
    airflow = shutil.which("airflow", path=env["PATH"])
    if airflow is None:
        raise RecsysError(
            "the airflow command is not installed in this environment; install recsys with "
            "its airflow extra (`make install`)"
        )
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    log_path = home / "logs" / f"nightly-{ds}-{stamp}.log"
    started = time.monotonic()
    with log_path.open("w") as out:
        migrate = subprocess.run(
            [airflow, "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if migrate.returncode:
        raise RecsysError(
            f"`airflow db migrate` failed (status {migrate.returncode}); see {log_path}"
        )
    conf = json.dumps({"root": str(base), **(params or {})})
    report = home / "logs" / f"nightly-{ds}-{stamp}.jsonl"
    env["RECSYS_REPORT"] = str(report)
    echo(f"running the {DAG_ID} DAG for {ds} (Airflow log: {log_path})")
    with log_path.open("a") as out:
        cmd = [airflow, "dags", "test", DAG_ID, ds, "--conf", conf]
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _follow(proc, report, echo)
        code = proc.wait()
        # What ran and how it ended, from Airflow's metadata database.
        states = [airflow, "tasks", "states-for-dag-run", DAG_ID, ds, "--output", "json"]
        listed = subprocess.run(states, env=env, stdout=subprocess.PIPE, stderr=out, text=True)
    # A DAG that did not import has no run to list: the commands' report and the exit status
    # still tell what happened.
    tasks = task_states(listed.stdout) if listed.returncode == 0 else []
    entries = read_report(report)
    for t in tasks:
        if t.task not in {e["task"] for e in entries}:  # tasks that run no recsys command
            echo(f"  {t.task:10} {t.state:8} {t.seconds:7.1f} s")
    ok, reason = outcome(tasks, entries, code)
    if listed.returncode and code == 0 and not any(e.get("error") for e in entries):
        reason = f"`airflow tasks states-for-dag-run` failed (status {listed.returncode})"
    return NightlyResult(ok, ds, time.monotonic() - started, log_path, tasks, reason)
