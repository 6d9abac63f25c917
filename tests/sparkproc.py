"""Running Spark the way a cluster user does, from tests: spark-submit and a standalone cluster.

Shared by the spark-submit tests (``tests/jobs``), the kill test of the scoring step and anything
else that must start real Spark processes:

* :func:`spark_env`: a child environment on loopback with this venv's Spark and Python;
* :func:`run`: run a command in its own process group, read its output as it comes, kill the
  group on a hang or when the cluster never gives the job an executor (:class:`Finished`);
* :func:`start_standalone_cluster`: a master + one or more workers on loopback, as a context
  manager (usable outside a fixture); always stopped on exit;
* :func:`package_zip` / :func:`isolated_python`: the ``--py-files`` zip, and this venv's Python
  without the editable recsys, so that a job can import recsys only from the zip;
* :func:`import_probe_conf` / :func:`recsys_imports`: run Python workers through a probe that
  logs where each one imported recsys from (executors really use the zip).

Every process is started in its own process group and stopped by that group's id only.
"""

from __future__ import annotations

import contextlib
import json
import os
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

import pytest

from recsys.package import build_zip

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPARK_SUBMIT = str(BIN / "spark-submit")

SUBMIT_TIMEOUT = 240  # a safety net; a healthy tiny run takes 20-50 s on a busy 2-core machine
CLUSTER_START_TIMEOUT = 60
OUTPUT_TAIL = 6000
# What Spark's driver logs (every 15 s) while no executor accepts its tasks: it never gives up.
STARVED = "Initial job has not accepted any resources"


# --------------------------------------------------------------------------------------------
# Package and environment


def package_zip(out: Path) -> Path:
    """The zip a cluster user ships, built the way ``make dist`` builds it."""
    return build_zip(out)


# A Spark Python worker module (``spark.python.worker.module``; the daemon accepts only names
# beginning with "pyspark") that runs pyspark.worker and appends where each worker process
# imported ``recsys`` from to the file $RECSYS_IMPORT_LOG: Python's own answer, per process.
PROBE_WORKER = "pyspark_recsys_probe"
IMPORT_LOG = "RECSYS_IMPORT_LOG"
_PROBE_SOURCE = f'''"""Test-only Spark Python worker: logs where a worker imports `recsys` from."""
import os
import sys

from pyspark import worker


class _RecsysOrigin:
    def find_spec(self, name, path=None, target=None):
        if name != "recsys":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and os.environ.get("{IMPORT_LOG}"):
                with open(os.environ["{IMPORT_LOG}"], "a") as log:
                    log.write(f"{{os.getpid()}}\\t{{os.path.abspath(spec.origin)}}\\n")
            if spec is not None:
                return spec
        return None


sys.meta_path.insert(0, _RecsysOrigin())
main = worker.main
'''


def isolated_python(folder: Path) -> Path:
    """This venv's Python without the editable recsys, so only the zip can provide it.

    ``-S`` skips the ``.pth`` files (one of them installs the editable-import hook); the
    site-packages folder then goes on PYTHONPATH *after* whatever spark-submit put there.
    Writes the wrapper script ``folder/python`` and checks that it cannot import recsys.
    ``folder`` also holds the import probe of :func:`import_probe_conf` (and nothing else).
    """
    site = sysconfig.get_paths()["purelib"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PROBE_WORKER}.py").write_text(_PROBE_SOURCE)
    wrapper = folder / "python"
    path = f"${{PYTHONPATH:+$PYTHONPATH:}}{site}:{folder}"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{path}" exec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    probe = subprocess.run(
        [str(wrapper), "-c", "import pyspark, pandas, pyarrow, yaml, rich\nimport recsys"],
        capture_output=True,
        text=True,
        timeout=60,
        env=spark_env(None),
        cwd=folder,  # from the repo's root, `import recsys` would find the checkout
        check=False,
    )
    assert "No module named 'recsys'" in probe.stderr, (
        "the isolated Python must see every dependency but not recsys, or the tests below could "
        f"pass without the zip:\nstdout:\n{probe.stdout}\nstderr:\n{probe.stderr}"
    )
    return wrapper


def import_probe_conf(log: Path) -> list[str]:
    """spark-submit options that run Python workers through the probe of an
    :func:`isolated_python` (so they fail if executors ignore it) and log their recsys imports
    to ``log``; read them back with :func:`recsys_imports`."""
    return [
        "--conf",
        f"spark.python.worker.module={PROBE_WORKER}",
        "--conf",
        f"spark.executorEnv.{IMPORT_LOG}={log}",
    ]


def recsys_imports(log: Path) -> list[str]:
    """Where each Python worker process imported ``recsys`` from (its ``__init__`` file, as an
    absolute path: an executor's sys.path names its copy of the zip relative to its work dir)."""
    if not log.exists():
        return []
    return [line.split("\t", 1)[1] for line in log.read_text().splitlines() if "\t" in line]


def spark_env(python: Path | None) -> dict[str, str]:
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


def tail(text: str, limit: int = OUTPUT_TAIL) -> str:
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
            f"stdout:\n{tail(self.out)}\nstderr:\n{tail(self.err)}"
        )


def _drain(stream, sink: list[str], seen: threading.Event) -> None:
    for line in stream:
        sink.append(line)
        if STARVED in line:
            seen.set()


def run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Finished:
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
                kill_group(proc)
                break
    for reader in readers:
        reader.join(timeout=10)
    result = Finished(
        code, "".join(out), "".join(err), time.monotonic() - started, starved.is_set()
    )
    if code is None and not result.starved:
        pytest.fail(f"spark-submit did not finish in {timeout}s\n{result.report()}")
    return result


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
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


def free_ports(n: int) -> list[int]:
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


def get_json(url: str) -> dict:
    """GET a loopback URL, ignoring any http_proxy in the environment."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as response:
        return json.loads(response.read().decode())


# --------------------------------------------------------------------------------------------
# A standalone master and worker on loopback


class ExecutorStarved(AssertionError):
    """The cluster accepted the application but never started an executor for it."""


class Cluster:
    """A running standalone master + its workers, with their logs for failure messages.

    ``cores`` and ``memory`` are each worker's; ``work`` holds every worker's executor folders.
    """

    def __init__(
        self, url: str, ui: str, logs: list[Path], work: Path, cores: int, memory: str, workers=1
    ):
        self.url, self.ui, self.logs, self.work = url, ui, logs, work
        self.cores, self.memory, self.workers = cores, memory, workers

    def state(self) -> dict:
        return get_json(f"{self.ui}/json/")

    def log_text(self) -> str:
        parts = []
        for path in self.logs:
            text = path.read_text(errors="replace") if path.exists() else "(none)"
            parts.append(f"--- {path.name}\n{tail(text, 4000)}")
        return "\n".join(parts)

    def executor_logs(self) -> list[Path]:
        """The stderr files of every executor the workers started (``app-*/<id>/stderr`` under
        ``work``, or under ``work/<worker>`` with several workers)."""
        return sorted({*self.work.glob("app-*/*/stderr"), *self.work.glob("*/app-*/*/stderr")})

    def completed_apps(self, wait: float = 20.0) -> list[dict]:
        """The master's finished applications; waits (bounded) for the first one to show up,
        since the master lists an app only once its driver disconnected."""
        deadline = time.monotonic() + wait
        while True:
            apps = self.state().get("completedapps", [])
            if apps or time.monotonic() > deadline:
                return apps
            time.sleep(0.5)

    def check_not_starved(self, result: Finished, report: str) -> None:
        """Raise :class:`ExecutorStarved` when ``run`` stopped a job no executor accepted."""
        if result.starved:
            apps = self.state().get("completedapps", [])
            asked = [app.get("memoryperexecutor") for app in apps]
            raise ExecutorStarved(
                f"the worker ({self.cores} core(s), {self.memory}) never got an executor for the "
                f"job: it asked for {asked} MB per executor\n{report}"
            )


@contextlib.contextmanager
def start_standalone_cluster(
    folder: Path,
    cores: int = 1,
    memory: str = "1g",
    timeout: float = CLUSTER_START_TIMEOUT,
    workers: int = 1,
) -> Iterator[Cluster]:
    """Start the master and ``workers`` workers (``cores`` and ``memory`` each) as their own
    process groups; always kill them all on exit.

    The pip pyspark has no ``sbin/start-master.sh``, so ``spark-class`` runs the daemons in the
    foreground. Ready means the master lists every worker as ALIVE (its JSON UI), bounded in
    time. Logs go to ``folder/master.log`` and ``folder/worker.log`` (``worker-<i>.log`` after
    the first), executors' work dirs to ``folder/worker-work`` (``worker-work/<i>`` with several).
    """
    port, ui_port, *worker_ui_ports = free_ports(2 + workers)
    env = spark_env(None)
    work = folder / "worker-work"
    work.mkdir(parents=True)
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
    worker_cmds = [
        [
            spark_class,
            "org.apache.spark.deploy.worker.Worker",
            f"spark://127.0.0.1:{port}",
            "--host",
            "127.0.0.1",
            "--cores",
            str(cores),
            "--memory",
            memory,
            "--webui-port",
            str(ui),
            "--work-dir",
            str(work if workers == 1 else work / str(i)),
        ]
        for i, ui in enumerate(worker_ui_ports)
    ]
    worker_logs = [folder / ("worker.log" if i == 0 else f"worker-{i}.log") for i in range(workers)]
    cluster = Cluster(
        f"spark://127.0.0.1:{port}",
        f"http://127.0.0.1:{ui_port}",
        [folder / "master.log", *worker_logs],
        work,
        cores,
        memory,
        workers,
    )
    procs: list[subprocess.Popen] = []
    try:
        for cmd, log in zip((master_cmd, *worker_cmds), cluster.logs, strict=True):
            with open(log, "w") as handle:
                procs.append(
                    subprocess.Popen(
                        cmd,
                        cwd=folder,
                        env=env,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        deadline = time.monotonic() + timeout
        while True:
            dead = [p.args[1] for p in procs if p.poll() is not None]
            if dead:
                pytest.fail(f"{dead} exited while starting:\n{cluster.log_text()}")
            try:
                state = cluster.state()
            except OSError:
                state = {}
            alive = [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]
            if len(alive) >= workers:
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no worker registered within {timeout}s; master state "
                    f"{state}\n{cluster.log_text()}"
                )
            time.sleep(0.5)
        yield cluster
    finally:
        for proc in reversed(procs):
            kill_group(proc)
