"""Choosing the distribution strategy: the same code path on 0, 1 or N GPUs, or N workers.

``MirroredStrategy`` over two or more visible GPUs (or the logical CPU devices tests make); one
device (a GPU, or the CPU when there is none) trains under TensorFlow's default strategy; when
``TF_CONFIG`` names several workers, ``MultiWorkerMirroredStrategy``.

The global batch is the per-replica batch
times the number of replicas, and the tables' learning rate follows it linearly
(``plan.table_learning_rate``: ``train.learning_rate`` is the step at a global batch of 256).
The loss is a mean over the global batch, so a row's gradient shrinks as the batch grows, and the
row-wise Adagrad accumulators (0.1 at the start) stay far above those small squared gradients: the
update behaves like SGD, whose step must grow with the batch (measured on MovieLens 100K: batch 1024
at the batch-256 step under-trained; scaled, it reached the same RMSE). Dense layers use Adam, which
is invariant to the gradient's scale.
"""

from __future__ import annotations

import json
import logging
import os

import tensorflow as tf

log = logging.getLogger(__name__)


def worker_count() -> int:
    """Workers named in ``TF_CONFIG`` (1 when unset)."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError:
        return 1
    return max(1, len(cluster.get("worker", [])) + len(cluster.get("chief", [])))


def is_chief() -> bool:
    """Whether this process writes the run: worker 0 of ``TF_CONFIG`` (or no ``TF_CONFIG``).

    The other workers of a barrier stage (``recsys.train.launch.barrier``) train in step with it and
    write only to scratch space.
    """
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        return True
    task = config.get("task") or {}
    kind = task.get("type", "worker")
    if "chief" in config.get("cluster", {}):
        return kind == "chief"
    return kind == "worker" and int(task.get("index", 0)) == 0


def make_strategy(devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The strategy for this process; logs the devices it will use."""
    if worker_count() > 1:
        strategy: tf.distribute.Strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        if devices is None:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in gpus] or ["/cpu:0"]
        # One device needs no mirroring, and TensorFlow's default strategy (the default device:
        # the GPU if there is one) lets the step update its variables inside its own XLA
        # islands; a mirrored update needs a cross-replica merge, which nested functions cannot.
        if len(devices) == 1:
            strategy = tf.distribute.get_strategy()
        else:
            strategy = tf.distribute.MirroredStrategy(devices)
    log.info(
        "TensorFlow %s on %s: %s over %s, %d replica(s)",
        tf.__version__,
        device_kind(),
        "default strategy" if strategy is tf.distribute.get_strategy() else type(strategy).__name__,
        ", ".join(devices or ["cluster"]),
        strategy.num_replicas_in_sync,
    )
    return strategy


def device_kind() -> str:
    """What trains here, for a person: the visible GPUs by name, or that there is none."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU (no GPU visible)"
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
    return f"{len(gpus)} GPU(s): {', '.join(names)}"
