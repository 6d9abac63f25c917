"""How a run walks its rows: the global batch, the tables' step, the steps per epoch.

Pure arithmetic on the train config and the prepared run's counts (no TensorFlow), decided before
the model is built; ``recsys.train.loop`` trains to the ``Plan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from recsys.config import TrainConfig
from recsys.manifests import PreparedManifest
from recsys.train.models.build import ranking_settings

MIN_STEPS_PER_EPOCH = 300  # the automatic batch keeps at least this many steps per epoch
MAX_AUTO_GLOBAL_BATCH = 16384  # measured best throughput per step on the 2-core CPU
# train.learning_rate is the tables' step at this global batch; other batches scale it linearly.
LR_REFERENCE_BATCH = 256


def auto_global_batch(n_train: int) -> int:
    """A power of two giving >= ~300 steps per epoch, between 256 and 16384."""
    target = max(1, n_train // MIN_STEPS_PER_EPOCH)
    return int(min(MAX_AUTO_GLOBAL_BATCH, max(256, 2 ** int(math.log2(target)))))


def table_learning_rate(
    learning_rate: float, global_batch: int, method: str = "adagrad", warm: bool = False
) -> float:
    """The tables' step for ``global_batch``: ``learning_rate`` scaled by batch / 256 (Adagrad)
    or by sqrt(batch / 256) (lazy Adam from random rows).

    Lazy Adam (``method="adam"``) normalises each gradient by its running scale, so the mean-loss
    shrinkage with the batch does not reach its step; but a large batch takes fewer steps an
    epoch, and a cold run at the batch-256 step needs far more epochs on a big log
    (docs/tuning.md). The decay on plateau
    (``train.decay``) then brings the step down. A warm run (``warm``) starts near its optimum
    and takes its step as given.

    Row-wise Adagrad's update is in effect SGD on a mean loss, whose gradients shrink as the
    batch grows; scaling keeps each rating's pull on its rows the same whatever the data size or
    number of replicas (measured: docs/tuning.md).
    """
    if method == "adam":
        scale = 1.0 if warm else math.sqrt(global_batch / LR_REFERENCE_BATCH)
        return float(learning_rate) * scale
    return float(learning_rate) * global_batch / LR_REFERENCE_BATCH


def compile_options(tcfg: TrainConfig, replicas: int, steps: int) -> dict[str, Any]:
    """Steps per execution for ``model.compile`` (``steps`` must be a multiple of it).

    Keras' own XLA stays off: with one replica the model compiles its step as XLA islands
    (``RecModel.island``) with the big matmuls outside, which is faster on CPU than a whole XLA
    step. With several replicas Keras 3.15 can do neither: an XLA-compiled step cannot reach
    variables mirrored on another device, and multi-step execution over a distributed iterator
    fails in ``has_next``.
    """
    if replicas > 1:
        return {"jit_compile": False, "steps_per_execution": 1}
    return {"jit_compile": False, "steps_per_execution": steps_per_call(steps)}


def steps_per_call(steps: int, most: int = 64) -> int:
    """Steps in one call of the train function: at most ``most``, as even as ``steps`` allows."""
    return max(1, steps // math.ceil(steps / most))


def epoch_steps(n_rows: int, global_batch: int, replicas: int) -> int:
    """Steps per epoch: whole batches, rounded down to whole calls of ``steps_per_call``.

    Keras runs whole calls, so an epoch of 362 steps at 64 a call would train 384; rounding to
    6 calls of 60 steps keeps the epoch (and the rows/s figures) what it says.
    """
    steps = max(1, n_rows // global_batch)
    if replicas > 1:
        return steps
    return steps - steps % steps_per_call(steps)


@dataclass(frozen=True)
class Plan:
    """How one run walks its rows: the splits trained on, the batch and the steps."""

    splits: tuple[str, ...]
    trained: list[str]  # the splits that have rows
    n_train: int
    n_val: int  # validation rows steering early stopping (0: none)
    replicas: int
    per_replica: int
    global_batch: int
    steps: int
    group: int = 1  # rows per user run of a batch (train.user_group where the loss uses it)


def plan_run(tcfg: TrainConfig, manifest: PreparedManifest, splits, replicas: int) -> Plan:
    """The batch plan of ``splits``; validation steers only a run on the train split alone."""
    n_train = sum(manifest.count(s) for s in splits)
    per_replica = tcfg.batch_per_replica or max(1, auto_global_batch(n_train) // replicas)
    global_batch = per_replica * replicas
    group = 1
    if tcfg.objective == "ranking":
        group = ranking_settings(tcfg, manifest, per_replica)["group"]
    return Plan(
        splits=tuple(splits),
        trained=[s for s in splits if manifest.count(s)],
        n_train=n_train,
        n_val=manifest.count("val") if tuple(splits) == ("train",) else 0,
        replicas=replicas,
        per_replica=per_replica,
        global_batch=global_batch,
        steps=epoch_steps(n_train, global_batch, replicas),
        group=group,
    )
