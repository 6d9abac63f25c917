"""``recsys nightly``: run the Airflow DAG once, here, on SQLite (what ``make run`` calls).

Sets up an Airflow home under the storage root (``<root>/airflow``: SQLite metadata, no
examples, this checkout's ``dags/``), a local ``spark_default`` connection (``local[2]``) unless
one is configured, then runs ``airflow db migrate`` and ``airflow dags test recsys_nightly <ds>``
in child processes. Airflow's own output goes to ``<root>/airflow/logs/nightly-<ds>-<time>.log``;
the terminal gets one line per finished task with its time, and on failure the reason.

This module never imports Airflow: the Airflow CLI runs in its own process, as a scheduler would
run the tasks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from recsys import storage
from recsys.errors import RecsysError

DAG_ID = "recsys_nightly"
LOCAL_SPARK = '{"conn_type": "spark", "host": "local[2]"}'
_START = re.compile(r"^(\S+) .*\[DAG TEST\] starting task_id=(\S+)")
_END = re.compile(r"^(\S+) .*\[DAG TEST\] end task task_id=(\S+)")
_STATE = re.compile(r"new_state=(\w+)")
# What a failed task says about why: our one-sentence errors, a refused gate, an exception.
# Lines of the task log a person at the terminal should see too (the offline fallback).
_NOTE = re.compile(r"\] (\S+ is not available \(.*?)(?: \[airflow\.task\].*)?$")
_REASON = re.compile(
    r"(AirflowFailException: .*|AirflowException: .*|recsys \w+: (error|refused).*)"
)


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


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _tee(lines: Iterable[str], out: TextIO) -> Iterator[str]:
    for line in lines:
        out.write(line)
        yield line


def follow(lines: Iterable[str], echo=print) -> tuple[list[TaskTime], str]:
    """Read ``airflow dags test`` output: each task's state and time (echoed as it ends), the
    notes a person should see, and the first reason a task gave for failing."""
    tasks: dict[str, TaskTime] = {}
    begun: dict[str, float] = {}
    reason = ""
    current = None
    for line in lines:
        if m := _START.match(line):
            current = m.group(2)
            begun[current] = _ts(m.group(1))
            tasks[current] = TaskTime(current)
        elif (m := _STATE.search(line)) and current in tasks:
            tasks[current].state = m.group(1)
        elif m := _END.match(line):
            name = m.group(2)
            t = tasks.setdefault(name, TaskTime(name))
            t.seconds = _ts(m.group(1)) - begun.get(name, _ts(m.group(1)))
            echo(f"  {name:10} {t.state:8} {t.seconds:7.1f} s")
            current = None
        if m := _NOTE.search(line):
            echo(f"  {m.group(1)}")
        if (m := _REASON.search(line)) and not reason:
            reason = m.group(1).strip()
    return list(tasks.values()), reason


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
    cmd = [airflow, "dags", "test", DAG_ID, ds, "--conf", conf]
    echo(f"running the {DAG_ID} DAG for {ds} (Airflow log: {log_path})")
    with log_path.open("a") as out:
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        tasks, reason = follow(_tee(proc.stdout, out), echo)
        code = proc.wait()
    ok = code == 0 and all(t.state == "success" for t in tasks)
    if not ok and not reason:
        reason = f"airflow dags test exited with status {code}"
    return NightlyResult(ok, ds, time.monotonic() - started, log_path, tasks, reason)
