"""One TensorFlow worker of a barrier training stage (started by ``recsys.train.launch.barrier``).

    python -m recsys.train.launch.worker JOB_PICKLE RESULT_PICKLE

``JOB_PICKLE`` holds ``(entry, kwargs)``: ``entry`` is ``"module:function"``, called with
``kwargs``; ``TF_CONFIG`` (set by the task) says which worker this is. What the call returns is
written to ``RESULT_PICKLE`` as ``{"result": ...}``, a ``RecsysError`` as ``{"error": sentence}``
(exit status 2). The process ends when the task that started it ends, even when the task is
killed (``PR_SET_PDEATHSIG`` on Linux, else a watch on the parent's pid).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import os
import pickle
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("recsys.train.launch.worker")


def die_with_parent() -> None:
    """Exit when the task's Python worker goes (Spark kills it when the stage is stopped)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="recsys-parent-watch", daemon=True).start()


def set_threads() -> None:
    """One TensorFlow op at a time uses the task's cores (``spark.task.cpus``), not the host's."""
    threads = int(os.environ.get("RECSYS_WORKER_THREADS") or 0)
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)


def call(entry: str, kwargs: dict[str, Any]) -> Any:
    module, _, name = entry.partition(":")
    return getattr(importlib.import_module(module), name)(**kwargs)


def train_worker(cfg, ds: str, run: str | None, prepared_ds, prepared_run, refit_of) -> dict | None:
    """The production entry: ``run_train`` in this worker; the chief's model run, else None."""
    from recsys.train.step import run_train

    result = run_train(cfg, ds, run, prepared_ds, prepared_run, refit_of)
    if result is None:
        return None
    return {"path": str(result.path), "model_version": result.manifest.model_version}


def main(argv: list[str]) -> int:
    from recsys.errors import RecsysError

    die_with_parent()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("recsys").setLevel(logging.INFO)
    import recsys

    log.info("worker %s: recsys from %s", os.environ.get("TF_CONFIG", "(one)"), recsys.__file__)
    job, result = Path(argv[0]), Path(argv[1])
    entry, kwargs = pickle.loads(job.read_bytes())
    set_threads()
    try:
        outcome: dict[str, Any] = {"result": call(entry, kwargs)}
        status = 0
    except RecsysError as exc:
        outcome, status = {"error": str(exc)}, 2
    result.write_bytes(pickle.dumps(outcome))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
