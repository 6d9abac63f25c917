"""The prepare job run the ways a cluster user runs it: spark-submit, and a standalone cluster.

``recsys prepare`` starts its own JVM; a cluster user instead ships the package as a zip with
``--py-files`` and lets spark-submit own the JVM, the master and the memory. Those paths break in
ways the in-process tests never see (a module missing from the zip, a path that only exists on the
driver, a setting applied after the JVM started), so these tests run the real commands.

The spark-submit tests run Python through a wrapper that starts the venv's interpreter with ``-S``
and the venv's site-packages on PYTHONPATH: every dependency is importable, but the editable
install of recsys (a ``.pth`` import hook that works from any working directory) is not. The job
can therefore only import recsys from the zip, which is what these tests are for.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow.dataset as pads
import pytest

from recsys import storage
from recsys.package import build_zip

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "jobs" / "prepare.py"
BIN = Path(sys.executable).parent
DS = "2026-01-02"

N_USERS, N_ITEMS, PER_USER = 6, 12, 10
N_GOOD = N_USERS * PER_USER
BAD_LINES = ["3,5,9.5,1700000000"]  # rating above the 0.5-5 scale: quarantined, not dropped
# leave-last with the defaults (1 test + 1 validation row per user); every user has 10 rows.
EXPECTED_COUNTS = {"train": N_GOOD - 2 * N_USERS, "val": N_USERS, "test": N_USERS}
# One bad row in 61 is above the default 1% reject limit, so the job is told to accept it.
JOB_ARGS = ["--split", "leave-last", "--max-reject-fraction", "0.05", "--ds", DS]

SUBMIT_TIMEOUT = 240  # a safety net; a healthy run takes 30-50 s on a busy 2-core machine
CLUSTER_START_TIMEOUT = 60
OUTPUT_TAIL = 6000
# What Spark's driver logs (every 15 s) while no executor accepts its tasks: it never gives up.
STARVED = "Initial job has not accepted any resources"


# --------------------------------------------------------------------------------------------
# Input, package and environment


def _write_ml_csv(folder: Path) -> Path:
    """An ml-latest-small-shaped folder small enough that Spark's start-up dominates the run.

    User ``u`` rates the 10 items ``(u + k) % 12 + 1`` at strictly increasing timestamps, so
    leave-last has one obvious last (test) and second-to-last (validation) row per user.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"]
    ts = 1_600_000_000
    for user in range(1, N_USERS + 1):
        for k in range(PER_USER):
            ts += 3600
            item = (user + k) % N_ITEMS + 1
            rating = ((user * 7 + k * 3) % 10 + 1) / 2
            lines.append(f"{user},{item},{rating},{ts}")
    lines[20:20] = BAD_LINES
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"]
    for item in range(1, N_ITEMS + 1):
        title = f'"Movie {item}, The ({1990 + item})"' if item % 4 == 0 else f"Movie {item} (2001)"
        movies.append(f"{item},{title},{'Comedy|Drama' if item % 2 else 'Action'}")
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return folder


@pytest.fixture(scope="module")
def ml_input(tmp_path_factory) -> Path:
    """The tiny input, written once per module: every test reads it, none changes it."""
    return _write_ml_csv(tmp_path_factory.mktemp("input") / "ml-tiny")


@pytest.fixture(scope="module")
def package_zip(tmp_path_factory) -> Path:
    """The zip a cluster user ships, built the way ``make dist`` builds it."""
    return build_zip(tmp_path_factory.mktemp("dist") / "recsys.zip")


@pytest.fixture(scope="module")
def isolated_python(tmp_path_factory) -> Path:
    """This venv's Python without the editable recsys, so only the zip can provide it.

    ``-S`` skips the ``.pth`` files (one of them installs the editable-import hook); the
    site-packages folder then goes on PYTHONPATH *after* whatever spark-submit put there.
    """
    site = sysconfig.get_paths()["purelib"]
    folder = tmp_path_factory.mktemp("python")
    wrapper = folder / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH="${{PYTHONPATH:+$PYTHONPATH:}}{site}" exec "{sys.executable}" -S "$@"\n'
    )
    wrapper.chmod(0o755)
    probe = subprocess.run(
        [str(wrapper), "-c", "import pyspark, pandas, pyarrow, yaml, rich\nimport recsys"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_spark_env(None),
        cwd=folder,  # from the repo's root, `import recsys` would find the checkout
        check=False,
    )
    assert "No module named 'recsys'" in probe.stderr, (
        "the isolated Python must see every dependency but not recsys, or the tests below could "
        f"pass without the zip:\nstdout:\n{probe.stdout}\nstderr:\n{probe.stderr}"
    )
    return wrapper


def _spark_env(python: Path | None) -> dict[str, str]:
    """A child environment that reaches only loopback and uses this venv's Spark and Python.

    SPARK_HOME is pinned to the installed pyspark so a stray SPARK_HOME cannot mix Spark
    versions; leftovers of an in-process session (gateway port) must not leak into a new JVM, and
    PYTHONPATH goes because the tests are often run with PYTHONPATH=<checkout>, which would let
    the job import recsys from the checkout instead of the zip.
    """
    import pyspark

    env = dict(os.environ)
    for key in ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "SPARK_CONF_DIR", "PYTHONPATH"):
        env.pop(key, None)
    python_exe = str(python or sys.executable)
    env.update(
        SPARK_HOME=str(Path(pyspark.__file__).resolve().parent),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=python_exe,
        PYSPARK_DRIVER_PYTHON=python_exe,
        RECSYS_SPARK_LOG_LEVEL="WARN",
    )
    return env


# --------------------------------------------------------------------------------------------
# Running processes


def _tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    return (
        text if len(text) <= limit else f"[... {len(text) - limit} chars cut ...]\n{text[-limit:]}"
    )


@dataclass
class Finished:
    """What a spark-submit run left: exit code (None when the test stopped it) and its output."""

    code: int | None
    out: str
    err: str
    seconds: float
    starved: bool = False

    def report(self) -> str:
        return (
            f"spark-submit exit code {self.code} after {self.seconds:.1f}s\n"
            f"stdout:\n{_tail(self.out)}\nstderr:\n{_tail(self.err)}"
        )


def _drain(stream, sink: list[str], seen: threading.Event) -> None:
    for line in stream:
        sink.append(line)
        if STARVED in line:
            seen.set()


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Finished:
    """Run ``cmd`` in its own process group; kill the group (JVM + Python driver) on a hang.

    Output is read as it comes so that a job the cluster never gives an executor (Spark then
    only warns, forever) is stopped at the first warning instead of at the timeout.
    """
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out: list[str] = []
    err: list[str] = []
    starved = threading.Event()
    readers = [
        threading.Thread(target=_drain, args=(proc.stdout, out, threading.Event()), daemon=True),
        threading.Thread(target=_drain, args=(proc.stderr, err, starved), daemon=True),
    ]
    for reader in readers:
        reader.start()
    code: int | None = None
    while True:
        try:
            code = proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if starved.is_set() or time.monotonic() - started > timeout:
                _kill_group(proc)
                break
    for reader in readers:
        reader.join(timeout=10)
    result = Finished(
        code, "".join(out), "".join(err), time.monotonic() - started, starved.is_set()
    )
    if code is None and not result.starved:
        pytest.fail(f"spark-submit did not finish in {timeout}s\n{result.report()}")
    return result


def _kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process and everything it started (a worker's executors run in its group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also catches children that outlived the leader
    proc.wait(timeout=grace)


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (all held open until chosen, so none repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _get_json(url: str) -> dict:
    """GET a loopback URL, ignoring any http_proxy in the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read().decode())


# --------------------------------------------------------------------------------------------
# Checking the output


def _check_prepared(root: Path, context: str = "") -> dict:
    """Assert the run is complete, published and holds the expected users, items and splits."""
    folder = storage.latest(str(root), "prepared")
    manifest = storage.read_manifest(folder)
    pointer = json.loads((root / "prepared" / "_LATEST").read_text())
    assert pointer["ds"] == DS and pointer["run"] == manifest["run"], context
    assert Path(pointer["path"]).resolve() == folder.resolve(), context
    assert folder.parent.name == f"ds={DS}" and folder.name == f"run={manifest['run']}", context

    assert manifest["ds"] == DS and manifest["format"] == "ml-csv", context
    assert manifest["rows_read"] == N_GOOD + len(BAD_LINES), context
    assert manifest["quarantine"]["total"] == len(BAD_LINES), context
    assert manifest["quarantine"]["by_reason"] == {"rating_out_of_range": 1}, context
    assert manifest["duplicates_removed"] == 0 and manifest["kcore_removed"] == 0, context
    assert (manifest["n_users"], manifest["n_items"]) == (N_USERS, N_ITEMS), context
    assert manifest["counts"] == EXPECTED_COUNTS, context
    assert sum(manifest["counts"].values()) == (
        manifest["rows_read"] - manifest["quarantine"]["total"]
    ), context
    assert manifest["split"]["kind"] == "leave-last", context

    ratings = pads.dataset(folder / "ratings", format="parquet", partitioning="hive").to_table()
    assert ratings.num_rows == N_GOOD, context
    rows = ratings.to_pylist()
    last_ts = {}
    for row in rows:
        last_ts[row["user_idx"]] = max(last_ts.get(row["user_idx"], 0), row["ts"])
    test_rows = [r for r in rows if r["split"] == "test"]
    assert sorted(r["user_idx"] for r in test_rows) == list(range(N_USERS)), context
    assert all(r["ts"] == last_ts[r["user_idx"]] for r in test_rows), context
    return manifest


# --------------------------------------------------------------------------------------------
# 1. spark-submit --master local[2]


@pytest.mark.slow
def test_spark_submit_local(tmp_path, ml_input, package_zip, isolated_python):
    """The job runs under spark-submit with recsys coming only from the --py-files zip."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = tmp_path / "root"
    cmd = [
        str(BIN / "spark-submit"),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        "--py-files",
        str(package_zip),
        str(JOB),
        "--input",
        str(ml_input),
        "--root",
        str(root),
        *JOB_ARGS,
    ]
    result = _run(cmd, _spark_env(isolated_python), cwd, SUBMIT_TIMEOUT)
    print(f"spark-submit local[2]: {result.seconds:.1f}s")
    report = result.report()
    assert result.code == 0, report
    manifest = _check_prepared(root, report)
    import pyspark

    assert manifest["versions"]["spark"] == pyspark.__version__, report
    assert not (cwd / "var").exists(), "the job wrote under its working directory, not --root"


# --------------------------------------------------------------------------------------------
# 2. A standalone master and worker on loopback


class Cluster:
    """A running standalone master + one worker, with their logs for failure messages."""

    def __init__(self, url: str, ui: str, logs: list[Path]):
        self.url, self.ui, self.logs = url, ui, logs

    def state(self) -> dict:
        return _get_json(f"{self.ui}/json/")

    def log_text(self) -> str:
        parts = []
        for path in self.logs:
            text = path.read_text(errors="replace") if path.exists() else "(none)"
            parts.append(f"--- {path.name}\n{_tail(text, 4000)}")
        return "\n".join(parts)


@pytest.fixture
def standalone_cluster(tmp_path) -> Iterator[Cluster]:
    """Start master and worker as their own process groups; always kill both on teardown.

    The pip pyspark has no ``sbin/start-master.sh``, so ``spark-class`` runs the daemons in the
    foreground. Ready means the master lists the worker as ALIVE (its JSON UI), bounded in time.
    """
    port, ui_port, worker_ui_port = _free_ports(3)
    env = _spark_env(None)
    work = tmp_path / "worker-work"
    work.mkdir()
    spark_class = str(BIN / "spark-class")
    master_cmd = [
        spark_class,
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webui-port",
        str(ui_port),
    ]
    worker_cmd = [
        spark_class,
        "org.apache.spark.deploy.worker.Worker",
        f"spark://127.0.0.1:{port}",
        "--host",
        "127.0.0.1",
        "--cores",
        "1",
        "--memory",
        "1g",
        "--webui-port",
        str(worker_ui_port),
        "--work-dir",
        str(work),
    ]
    cluster = Cluster(
        f"spark://127.0.0.1:{port}",
        f"http://127.0.0.1:{ui_port}",
        [tmp_path / "master.log", tmp_path / "worker.log"],
    )
    procs: list[subprocess.Popen] = []
    try:
        for cmd, log in zip((master_cmd, worker_cmd), cluster.logs, strict=True):
            with open(log, "w") as handle:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        cwd=tmp_path,
                        env=env,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + CLUSTER_START_TIMEOUT
        while True:
            dead = [p.args[1] for p in procs if p.poll() is not None]
            if dead:
                pytest.fail(f"{dead} exited while starting:\n{cluster.log_text()}")
            try:
                state = cluster.state()
            except OSError:
                state = {}
            if any(w.get("state") == "ALIVE" for w in state.get("workers", [])):
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no worker registered within {CLUSTER_START_TIMEOUT}s; master state "
                    f"{state}\n{cluster.log_text()}"
                )
            time.sleep(0.5)
        yield cluster
    finally:
        for proc in reversed(procs):
            _kill_group(proc)


class ExecutorStarved(AssertionError):
    """The cluster accepted the application but never started an executor for it."""


@pytest.mark.slow
def test_spark_submit_standalone(
    tmp_path, ml_input, package_zip, isolated_python, standalone_cluster
):
    """The job runs on a real master/worker: executors in another JVM, the zip shipped to them."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = tmp_path / "root"
    cmd = [
        str(BIN / "spark-submit"),
        "--master",
        standalone_cluster.url,
        "--py-files",
        str(package_zip),
        "--driver-memory",
        "1g",
        "--executor-memory",
        "1g",
        "--total-executor-cores",
        "1",
        "--conf",
        "spark.ui.enabled=false",
        str(JOB),
        "--input",
        str(ml_input),
        "--root",
        str(root),
        *JOB_ARGS,
    ]
    result = _run(cmd, _spark_env(isolated_python), cwd, SUBMIT_TIMEOUT)
    print(f"spark-submit standalone: {result.seconds:.1f}s")
    report = f"{result.report()}\n{standalone_cluster.log_text()}"
    if result.starved:
        apps = standalone_cluster.state().get("completedapps", [])
        asked = [app.get("memoryperexecutor") for app in apps]
        raise ExecutorStarved(
            f"the worker (1 core, 1g) never got an executor for the job: it asked for "
            f"{asked} MB per executor although spark-submit said --executor-memory 1g\n{report}"
        )
    assert result.code == 0, report
    _check_prepared(root, report)

    # The master ran the application on its worker: the driver's log names the app id the master
    # gave it, the master lists that app as finished (once the driver disconnects, which can
    # trail spark-submit's exit slightly), and the worker's work dir holds the executor's logs.
    app_id = re.search(r"Connected to Spark cluster with app ID (\S+)", result.err)
    deadline = time.monotonic() + 20
    while True:
        state = standalone_cluster.state()
        apps = state.get("completedapps", [])
        if apps or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(apps) >= 1, f"master shows no completed application: {state}\n{report}"
    assert all(app["state"] == "FINISHED" for app in apps), f"{apps}\n{report}"
    if app_id:
        assert app_id.group(1) in [app["id"] for app in apps], f"{apps}\n{report}"
    executor_logs = list((tmp_path / "worker-work").glob("app-*/*/stderr"))
    assert executor_logs, f"the worker started no executor\n{report}"


# --------------------------------------------------------------------------------------------
# 3. jobs/prepare.py's main() in-process


@pytest.fixture(scope="module")
def job_module():
    """``jobs/prepare.py`` loaded by path: ``jobs/`` is a folder of scripts, not a package."""
    spec = importlib.util.spec_from_file_location("recsys_jobs_prepare", JOB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_main_in_process(spark, tmp_path, ml_input, job_module):
    """``main(argv)`` reuses the active session (as under spark-submit) and writes a run."""
    root = tmp_path / "root"
    code = job_module.main(["--input", str(ml_input), "--root", str(root), *JOB_ARGS])
    assert code == 0
    manifest = _check_prepared(root)
    assert manifest["versions"]["spark"] == spark.version


def test_job_main_missing_input(tmp_path, job_module, capsys):
    """A wrong --input is a user error: status 2 and one sentence naming the path, no trace."""
    code = job_module.main(["--input", "/nonexistent", "--root", str(tmp_path), "--ds", DS])
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "/nonexistent" in lines[0] and "does not exist" in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "prepared").exists()
