"""Training on the Spark cluster: one barrier stage of N tasks, one TensorFlow worker each.

``jobs/train.py`` calls :func:`run_barrier`. Spark starts the N tasks of a barrier stage together
(or none); each task picks a free port on its executor's host, learns every peer's address
through ``BarrierTaskContext.allGather``, and starts ``python -m recsys.train.launch.worker`` with a
``TF_CONFIG`` naming them all, so the same trainer runs under ``MultiWorkerMirroredStrategy``
(one worker: no ``TF_CONFIG``, the default strategy, as ``recsys train``). The worker is a child
process, not the Python worker itself: TensorFlow's collective runtime cannot be set up twice in
one process (a reused Python worker), and a child that dies with its task (``PR_SET_PDEATHSIG``)
never outlives a killed stage. Only task 0 (the chief) writes the model run; a failed task fails
the stage, Spark re-runs all of its tasks, and the chief of the new attempt writes a new staging
folder, so no half-written run is ever committed.

The launcher imports no TensorFlow (the driver does not train); ``spark-tensorflow-distributor``
(last release 2021, Spark 3 and Keras 2 era, GPU-slot oriented, runs training inside the Python
worker) was not used for the reasons above.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from recsys.errors import RecsysError, RecsysFailure

log = logging.getLogger(__name__)

WORKER_MODULE = "recsys.train.launch.worker"
# How long the driver waits for executors to offer the stage's slots before it says so: a barrier
# stage with more tasks than slots otherwise waits (Spark re-checks up to 40 times, 15 s apart).
SLOTS_WAIT_SECONDS = 60.0
# The lines of a failed worker's output quoted in the stage's error.
ERROR_TAIL_LINES = 30
FAILED = "training worker"  # how a worker's failure begins; the driver finds it in Spark's text
TASK_DIR = "recsys-train-task-"  # + the Python worker's pid: the task's temporary folder


def task_slots(sc) -> int:
    """Tasks the cluster can run at once now (executors' cores / ``spark.task.cpus``).

    What Spark's own barrier check counts (``SparkContext.maxNumConcurrentTasks``); in local
    mode, the local cores.
    """
    jsc = sc._jsc.sc()
    return int(jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().defaultResourceProfile()))


def slot_ceiling(conf) -> tuple[int, str] | None:
    """The most task slots the job's settings allow, and which settings say so; None when only
    the cluster knows (no cap on cores, dynamic allocation)."""
    cpus = int(conf.get("spark.task.cpus", "1"))
    if conf.get("spark.cores.max"):
        cores = int(conf.get("spark.cores.max"))
        return cores // cpus, f"spark.cores.max={cores} / spark.task.cpus={cpus}"
    dynamic = conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"
    if conf.get("spark.executor.instances") and not dynamic:
        n, cores = (
            int(conf.get("spark.executor.instances")),
            int(conf.get("spark.executor.cores", "1")),
        )
        return n * cores // cpus, (
            f"spark.executor.instances={n} x spark.executor.cores={cores} / spark.task.cpus={cpus}"
        )
    return None


def _too_few(workers: int, slots: int, why: str) -> RecsysError:
    return RecsysError(
        f"train.workers={workers} needs {workers} task slots at once (a barrier stage starts all "
        f"its tasks together) but the job has {slots} ({why}); lower train.workers or give "
        "the job more executor cores (DAG param spark_cores_max, spark-submit "
        "--total-executor-cores)"
    )


def wait_for_slots(sc, workers: int, wait: float = SLOTS_WAIT_SECONDS) -> int:
    """Wait (bounded) until executors offer ``workers`` task slots; else one sentence.

    A job whose settings cap it below ``workers`` (``slot_ceiling``), or a local master with too
    few cores, fails at once. Otherwise executors register a few seconds after the application
    starts, so a first count of 0 is normal; a count that stays below ``workers`` for ``wait``
    seconds is a cluster too small.
    """
    conf = sc.getConf()
    ceiling = slot_ceiling(conf)
    if ceiling is not None and ceiling[0] < workers:
        raise _too_few(workers, ceiling[0], ceiling[1])
    local = (conf.get("spark.master", "") or "").startswith("local")
    deadline = time.monotonic() + wait
    while True:
        slots = task_slots(sc)
        if slots >= workers:
            return slots
        if local:
            raise _too_few(workers, slots, f"master {conf.get('spark.master')}")
        if time.monotonic() > deadline:
            raise _too_few(workers, slots, f"registered executors after {wait:.0f}s")
        time.sleep(1.0)


def run_barrier(
    sc, workers: int, entry: str, kwargs: dict[str, Any], wait: float = SLOTS_WAIT_SECONDS
) -> Any:
    """Run ``entry`` (``"module:function"``, called with ``**kwargs``) in ``workers`` TensorFlow
    workers on the cluster; returns what the chief's call returned (it must pickle).

    Raises ``RecsysError`` (the worker's own sentence) when the chief refused its input, and
    ``RecsysFailure`` when the stage failed (a worker crashed or was killed) after Spark's retries.
    """
    if workers < 1:
        raise RecsysError(f"train.workers must be >= 1, got {workers}")
    slots = wait_for_slots(sc, workers, wait)
    log.info("training on %d worker(s) of a barrier stage (%d task slots)", workers, slots)
    payload = pickle.dumps((entry, kwargs))
    rdd = sc.parallelize(range(workers), workers).barrier()
    # The shuffle after the barrier stage makes it a map stage, which Spark re-runs whole when a
    # task fails (spark.stage.maxConsecutiveAttempts); a failed barrier result stage is final.
    # A local master's one task may use every core, as `recsys train` does; an executor's task
    # keeps to its spark.task.cpus.
    pin = not sc.master.startswith("local")
    stage = rdd.mapPartitions(lambda _: _barrier_task(payload, pin)).partitionBy(1)
    try:
        results = stage.collect()
    except Exception as exc:  # Py4JJavaError: the stage failed after its attempts
        raise RecsysFailure(_stage_error(str(exc), workers)) from None
    outcome = dict(results)
    chief = outcome.get(0) or {}
    if chief.get("error"):
        raise RecsysError(chief["error"])
    return chief.get("result")


def _stage_error(text: str, workers: int) -> str:
    """One sentence from Spark's failure text: the worker's own line when there is one."""
    for line in text.splitlines():
        at = line.find(FAILED)
        if at >= 0:
            return line[at:].strip()
    first = next((line.strip() for line in text.splitlines() if line.strip()), text)
    return f"the training stage of {workers} worker(s) failed: {first[:500]}"


# --------------------------------------------------------------------------------------------
# On the executors


def _free_port(host: str) -> int:
    """A port free on ``host`` now (the worker binds it moments later; TorchDistributor does
    the same)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _barrier_task(payload: bytes, pin: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """One task of the stage: rendezvous, then run the worker process and hand back its result."""
    from pyspark import BarrierTaskContext

    ctx = BarrierTaskContext.get()
    rank = ctx.partitionId()
    infos = ctx.getTaskInfos()
    host = infos[rank].address.rsplit(":", 1)[0]  # this executor's host, as its peers reach it
    peers = ctx.allGather(f"{host}:{_free_port(host)}")
    env = {**os.environ, "RECSYS_WORKER_THREADS": str(ctx.cpus()) if pin else ""}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)  # the --py-files zip included
    if len(peers) > 1:
        cluster = {"cluster": {"worker": peers}, "task": {"type": "worker", "index": rank}}
        env["TF_CONFIG"] = json.dumps(cluster)
    else:
        env.pop("TF_CONFIG", None)
    _sweep()
    with tempfile.TemporaryDirectory(prefix=f"{TASK_DIR}{os.getpid()}-") as tmp:
        job, result = Path(tmp) / "job.pickle", Path(tmp) / "result.pickle"
        job.write_bytes(payload)
        env["TMPDIR"] = tmp  # the worker's scratch space (a peer's backup) lives in here
        flags = ["-S"] if sys.flags.no_site else []  # as this worker was started
        cmd = [sys.executable, *flags, "-m", WORKER_MODULE, str(job), str(result)]
        code, tail = _run_worker(cmd, env)
        outcome = pickle.loads(result.read_bytes()) if result.is_file() else {}
    _sweep()
    if code != 0 and not outcome.get("error"):
        raise RuntimeError(
            f"{FAILED} {rank} of {len(peers)} (attempt {ctx.attemptNumber()}) exited "
            f"with status {code}; its last lines:\n" + "".join(tail)
        )
    yield rank, outcome


def _sweep() -> None:
    """Remove the folders of tasks whose Python worker is gone: a killed task (Spark kills the
    Python worker of a failed stage's other tasks) never ran its own clean-up."""
    for folder in Path(tempfile.gettempdir()).glob(f"{TASK_DIR}*"):
        try:
            pid = int(folder.name[len(TASK_DIR) :].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


def _run_worker(cmd: list[str], env: dict[str, str]) -> tuple[int, deque[str]]:
    """Run the worker, copying its output to this executor's log; returns its status and last
    lines."""
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    try:
        for line in proc.stdout or ():
            tail.append(line)
            sys.stderr.write(line)
        return proc.wait(), tail
    finally:
        if proc.poll() is None:  # the task is being stopped: take the worker with it
            proc.kill()
            proc.wait()
