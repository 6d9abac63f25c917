"""A real Airflow for tests: its own PostgreSQL database, api-server, scheduler and dag-processor.

What a production deployment runs, on loopback, in a temporary folder::

    with postgres_database() as db, AirflowStack(tmp, db, [dag_file], env) as airflow:
        airflow.unpause("recsys_nightly")
        run_id = airflow.trigger("recsys_nightly", "2026-05-02", conf={...})
        run = airflow.wait_run("recsys_nightly", run_id)
        assert run.state == "success", airflow.explain(run)

* :func:`postgres_database`: a fresh database ``recsys_af_<hex>`` on 127.0.0.1:5432 (trust auth,
  user ``postgres``), dropped on exit even while Airflow still holds connections to it;
* :class:`AirflowStack`: ``airflow db migrate``, then the three services, each in its own session
  with its output in ``<base>/logs/<service>.log``; LocalExecutor, the simple auth manager with
  every user an admin (the REST API needs no login); talks to Airflow through REST API v2 only.

Every process is started with ``start_new_session=True`` and stopped by its process group id.
Task processes can leave that group (Spark's JVM, its Python workers, orphans re-parented to
init), so every child also carries a marker variable in its environment, and :meth:`stop` kills,
by pid, every process that carries this stack's marker.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
BIN = Path(sys.executable).parent
MARKER = "RECSYS_AIRFLOW_STACK"  # environment variable every process of a stack carries

MIGRATE_TIMEOUT = 300  # `airflow db migrate` on an empty database: ~30 s on 2 busy cores
START_TIMEOUT = 180  # api-server answering and both DAGs parsed
POLL = 3.0  # seconds between two looks at a run
LOG_TAIL = 6000  # characters of a log shown in a failure message
FINISHED = {"success", "failed", "skipped", "upstream_failed", "removed"}
# A task waiting for a retry has failed once: a test run should say so now, not after the delay.
RETRYING = "up_for_retry"
# Lines of a task log that say why it failed, shown above the log's tail.
REASON = re.compile(r"recsys \w+: (error|refused)|Traceback|Error:|Exception:|\berror\b", re.I)


def postgres_reachable(timeout: float = 2.0) -> bool:
    """Whether something accepts TCP connections on the PostgreSQL address."""
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=timeout):
            return True
    except OSError:
        return False


def _pg_admin(sql: str) -> None:
    import psycopg

    # autocommit: CREATE / DROP DATABASE refuse to run inside a transaction.
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def postgres_database(prefix: str = "recsys_af") -> Iterator[str]:
    """A new, empty database for one test session; yields its name, drops it on exit."""
    if not postgres_reachable():
        raise RuntimeError(
            f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT}; start it (trust auth for user "
            f"{PG_USER}) to run the real-Airflow tests"
        )
    name = f"{prefix}_{secrets.token_hex(4)}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        # FORCE (PostgreSQL 13+) ends the sessions a killed Airflow process may have left open.
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sqlalchemy_urls(database: str) -> dict[str, str]:
    """Airflow's metadata DB settings for a database: psycopg 3, sync and async.

    Airflow 3.3 opens the metadata DB through an async engine too (the execution API); left to
    itself it derives that URL as ``postgresql+asyncpg://``, a driver not installed here.
    """
    where = f"{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://{where}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": f"postgresql+psycopg_async://{where}",
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, chars: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return text[-chars:]


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class RunResult:
    """A DAG run as the REST API reports it, with its task instances by task id."""

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def task_states(self) -> dict[str, str | None]:
        return {t: ti.get("state") for t, ti in self.tasks.items()}

    def retrying(self) -> list[str]:
        return [t for t, ti in self.tasks.items() if ti.get("state") == RETRYING]


class AirflowError(RuntimeError):
    """Airflow did not start, or refused a request."""


class AirflowStack:
    """Airflow 3 on PostgreSQL with LocalExecutor: api-server, scheduler, dag-processor.

    ``dag_files`` are symlinked into a temporary dags folder (a symlink keeps a DAG's
    ``Path(__file__).resolve()`` pointing into its checkout); ``env`` is added to every process's
    environment (the task processes inherit it).
    """

    SERVICES = ("api-server", "scheduler", "dag-processor")

    def __init__(
        self,
        base: Path,
        database: str,
        dag_files: Iterable[Path],
        env: dict[str, str] | None = None,
        parallelism: int = 2,
    ):
        self.base = Path(base)
        self.home = self.base / "airflow"
        self.dags_dir = self.base / "dags"
        self.logs_dir = self.base / "logs"
        self.dag_files = [Path(f) for f in dag_files]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.marker = secrets.token_hex(8)
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = self._environment(database, parallelism, env or {})

    # ----------------------------------------------------------------------------------------
    # Set-up and tear-down

    def _environment(
        self, database: str, parallelism: int, extra: dict[str, str]
    ) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.update(
            {
                "PATH": str(BIN) + os.pathsep + env.get("PATH", ""),
                "AIRFLOW_HOME": str(self.home),
                **sqlalchemy_urls(database),
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(parallelism),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_dir),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                # Workers report to the api-server's execution API; everything on loopback.
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__WORKERS": "1",
                # Shared by every process, so tokens one issues the others accept.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                # The scheduler's log server would take the fixed port 8793 otherwise.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                # Two cores: parse each file once a minute at most, with one process.
                "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "60",
                MARKER: self.marker,
            }
        )
        env.update(extra)
        return env

    def start(self) -> AirflowStack:
        for folder in (self.home, self.dags_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
        for dag_file in self.dag_files:
            link = self.dags_dir / dag_file.name
            if not link.exists():
                link.symlink_to(dag_file.resolve())
        log = self.logs_dir / "db-migrate.log"
        with log.open("w") as out:
            try:
                code = subprocess.run(
                    [str(BIN / "airflow"), "db", "migrate"],
                    env=self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=MIGRATE_TIMEOUT,
                    start_new_session=True,
                ).returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
        if code != 0:
            raise AirflowError(f"`airflow db migrate` failed ({code}):\n{_tail(log)}")
        self._spawn("api-server", "--port", str(self.port), "--host", "127.0.0.1")
        self._spawn("scheduler")
        self._spawn("dag-processor")
        self._wait_api()
        return self

    def _spawn(self, service: str, *args: str) -> None:
        out = (self.logs_dir / f"{service}.log").open("w")
        try:
            self.procs[service] = subprocess.Popen(
                [str(BIN / "airflow"), service, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            out.close()  # the child holds its own copy

    def _wait_api(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, AirflowError):
                self.api("GET", "/api/v2/version")
                return
            time.sleep(1)
        raise AirflowError(
            f"the api-server did not answer on {self.url} within {START_TIMEOUT} s:\n"
            + self.service_log("api-server")
        )

    def _check_alive(self) -> None:
        for service, proc in self.procs.items():
            if proc.poll() is not None:
                raise AirflowError(
                    f"airflow {service} exited with status {proc.returncode}:\n"
                    + self.service_log(service)
                )

    def _marked(self) -> list[psutil.Process]:
        """Every live process whose environment carries this stack's marker."""
        found = []
        for proc in psutil.process_iter(["pid"]):
            if proc.pid == os.getpid():
                continue
            with contextlib.suppress(psutil.Error):
                if proc.environ().get(MARKER) == self.marker:
                    found.append(proc)
        return found

    def stop(self, grace: float = 15.0) -> list[int]:
        """Stop every process this stack started (by group, then by pid); returns leftover pids
        that even SIGKILL did not end (empty when all is well)."""
        family: dict[int, psutil.Process] = {}
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(proc.pid)
                family[parent.pid] = parent
                for child in parent.children(recursive=True):
                    family[child.pid] = child
        for proc in self._marked():
            family.setdefault(proc.pid, proc)
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)  # the session leader's pid is its group id
        _, alive = psutil.wait_procs(list(family.values()), timeout=grace)
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        # Whatever is left, and whatever was forked meanwhile, by pid.
        for _ in range(3):
            alive = {p.pid: p for p in alive if p.is_running()}
            alive.update({p.pid: p for p in self._marked()})
            if not alive:
                break
            for proc in alive.values():
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            _, rest = psutil.wait_procs(list(alive.values()), timeout=5)
            alive = list(rest)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        return [p.pid for p in self._marked()]

    def __enter__(self) -> AirflowStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------
    # REST API v2

    def api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float = 30,
    ) -> Any:
        """One request; returns the decoded JSON; raises AirflowError with the server's answer."""
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")
            raise AirflowError(f"{method} {path} -> HTTP {e.code}: {detail[:2000]}") from None
        return json.loads(text) if text else None

    def wait_parsed(self, dag_ids: Iterable[str], timeout: float = START_TIMEOUT) -> None:
        """Wait until the dag-processor has parsed every DAG; fail at once on an import error."""
        wanted = set(dag_ids)
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            errors = self.api("GET", "/api/v2/importErrors")["import_errors"]
            if errors:
                text = "\n".join(f"{e['filename']}:\n{e['stack_trace']}" for e in errors)
                raise AirflowError(f"DAG import errors:\n{text}")
            found = {d["dag_id"] for d in self.api("GET", "/api/v2/dags")["dags"]}
            if wanted <= found:
                return
            if time.monotonic() > deadline:
                raise AirflowError(
                    f"DAGs {sorted(wanted - found)} not parsed within {timeout:.0f} s:\n"
                    + self.service_log("dag-processor")
                )
            time.sleep(2)

    def unpause(self, dag_id: str) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str, conf: dict[str, Any]) -> str:
        """A manual run for the date (YYYY-MM-DD, midnight UTC) with conf; returns its run id."""
        body = {"logical_date": f"{logical_date}T00:00:00Z", "conf": conf}
        return self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> RunResult:
        quoted = urllib.parse.quote(run_id, safe="")
        raw = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}")
        tis = self.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances",
            params={"limit": 100},
        )["task_instances"]
        return RunResult(dag_id, run_id, raw["state"], {t["task_id"]: t for t in tis}, raw)

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 900) -> RunResult:
        """Poll until the run finished, or one of its tasks waits for a retry (which a test
        treats as a failure: a retry here means a task crashed or refused as retryable)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            run = self.run(dag_id, run_id)
            if run.state in ("success", "failed") or run.retrying():
                return run
            if time.monotonic() > deadline:
                run.state = f"{run.state} (still, after {timeout:.0f} s)"
                return run
            time.sleep(POLL)

    def wait_task(self, dag_id: str, run_id: str, task_id: str, timeout: float = 600) -> RunResult:
        """Poll until one task finished or waits for a retry."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            run = self.run(dag_id, run_id)
            state = run.tasks.get(task_id, {}).get("state")
            if state in FINISHED or state == RETRYING or run.state in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                return run
            time.sleep(POLL)

    def clear_tasks(
        self, dag_id: str, run_id: str, task_ids: list[str], downstream: bool = True
    ) -> list[str]:
        """Clear finished tasks (and their downstream) of a run, as the UI's Clear does; the run
        goes back to queued. Returns the task ids that were cleared."""
        body = {
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": task_ids,
            "include_downstream": downstream,
            "only_failed": False,  # the endpoint's default clears failed tasks only
            "reset_dag_runs": True,
        }
        out = self.api("POST", f"/api/v2/dags/{dag_id}/clearTaskInstances", body)
        return sorted(ti["task_id"] for ti in out["task_instances"])

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Clear every task of a run (the UI's Clear on a run)."""
        quoted = urllib.parse.quote(run_id, safe="")
        self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/clear", {"dry_run": False})

    def mark_failed(self, dag_id: str, run_id: str) -> None:
        """End a run that a failed step left waiting (max_active_runs would hold the next one)."""
        quoted = urllib.parse.quote(run_id, safe="")
        with contextlib.suppress(AirflowError):
            self.api("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{quoted}", {"state": "failed"})

    def asset_events(self, name: str) -> list[dict[str, Any]]:
        assets = self.api("GET", "/api/v2/assets", params={"name_pattern": name})["assets"]
        ids = [a["id"] for a in assets if a["name"] == name]
        if not ids:
            return []
        return self.api("GET", "/api/v2/assets/events", params={"asset_id": ids[0], "limit": 100})[
            "asset_events"
        ]

    # ----------------------------------------------------------------------------------------
    # Logs

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The task log of one try, as text (one line per structured log entry)."""
        quoted = urllib.parse.quote(run_id, safe="")
        try:
            out = self.api(
                "GET",
                f"/api/v2/dags/{dag_id}/dagRuns/{quoted}/taskInstances/{task_id}/logs/{try_number}",
                params={"full_content": "true"},
            )
        except AirflowError as e:
            return f"(no log: {e})"
        lines = []
        for entry in out.get("content") or []:
            if isinstance(entry, str):
                lines.append(entry)
                continue
            line = " ".join(str(entry.get(k, "")) for k in ("timestamp", "level", "event"))
            lines.append(line.strip())
            for err in entry.get("error_detail") or []:
                lines.append(json.dumps(err)[:4000])
        return "\n".join(lines)

    def service_log(self, service: str, chars: int = LOG_TAIL) -> str:
        path = self.logs_dir / f"{service}.log"
        return f"--- tail of {path}:\n{_tail(path, chars)}"

    def explain(self, run: RunResult, tasks: Iterable[str] | None = None) -> str:
        """What a person needs to see when a run did not end as expected: every task's state and
        try, and the tail of the logs of the tasks that failed (or of ``tasks``)."""
        lines = [f"{run.dag_id} run {run.run_id}: {run.state}"]
        for task_id, ti in run.tasks.items():
            lines.append(f"  {task_id:12} {ti.get('state')!s:16} try {ti.get('try_number')}")
        bad = list(tasks or [])
        bad += [
            t
            for t, ti in run.tasks.items()
            if ti.get("state") in ("failed", RETRYING) and t not in bad
        ]
        for task_id in bad:
            ti = run.tasks.get(task_id, {})
            try_number = max(int(ti.get("try_number") or 1), 1)
            text = self.task_log(run.dag_id, run.run_id, task_id, try_number)
            reasons = [ln for ln in text.splitlines() if REASON.search(ln)][-8:]
            if reasons:
                lines.append(f"--- {task_id} (try {try_number}) said:")
                lines += [f"  {ln[:600]}" for ln in reasons]
            lines.append(
                f"--- tail of the log of {task_id} (try {try_number}):\n{text[-LOG_TAIL:]}"
            )
        if not bad:
            lines.append(self.service_log("scheduler", 3000))
        return "\n".join(lines)


def end_time(ti: dict[str, Any]) -> float | None:
    """A task instance's end as a POSIX timestamp."""
    return _ts(ti.get("end_date"))
