"""One training run: the batch plan, the model and its start, the callbacks, Keras ``fit``.

``fit`` is what ``recsys train`` (``recsys.train.trainer``) and the benchmarks call: a prepared
run's splits in, a trained Keras model, its history and the training record out. Nothing here
writes a run folder; the trainer exports, evaluates and commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from recsys import schema as S
from recsys.config import Config, TrainConfig, resolve_train
from recsys.manifests import PreparedManifest, TrainingRecord, WarmRecord
from recsys.train import runs as user_runs
from recsys.train.models.build import build_model, genre_matrix, ranking_settings

log = logging.getLogger(__name__)

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
    epoch, and a cold run at the batch-256 step needs far more epochs on a big log (ml-25m shape:
    val NDCG@10 0.042 after 3 epochs at sqrt scaling, 0.021 without). The decay on plateau
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


def _checkpoint_dir(
    root: str, ds: str, prepared: Path, tcfg: TrainConfig, splits: tuple[str, ...] = ("train",)
) -> Path:
    """Where a killed run's backup waits: same ds, prepared run, splits and settings -> same
    folder."""
    key = {"prepared": str(prepared.resolve()), "train": asdict(tcfg)}
    if splits != ("train",):
        key["splits"] = list(splits)
    key = json.dumps(key, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(root) / "models" / "_checkpoints" / f"ds={ds}" / digest


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


def _input_fns(tcfg: TrainConfig, prepared: Path, plan: Plan, done_epochs: int = 0):
    """``tf.data`` input functions (per input context) of the training and validation rows;
    the training rows start after the batches of ``done_epochs`` (a resumed run's)."""
    from recsys.splits import split_dir
    from recsys.train.data import ratings_dataset

    in_memory = {"auto": None, "memory": True, "stream": False}[tcfg.input_mode]

    def train_fn(ctx):
        # Each step takes one batch per replica; a pipeline feeds its share of the replicas.
        per_step = ctx.num_replicas_in_sync // ctx.num_input_pipelines if ctx else 1
        return ratings_dataset(
            [split_dir(prepared, s) for s in plan.trained],
            global_batch_size=plan.global_batch,
            seed=tcfg.seed,
            in_memory=in_memory,
            input_context=ctx,
            drop_remainder=plan.n_train >= plan.global_batch,
            epochs=None,
            group=plan.group,
            skip_batches=done_epochs * plan.steps * per_step,
        )

    def val_fn(ctx):
        return ratings_dataset(
            split_dir(prepared, "val"),
            global_batch_size=plan.global_batch,
            shuffle=False,
            input_context=ctx,
            epochs=None,
        )

    return train_fn, val_fn


@dataclass
class Start:
    """The compiled model and how it started: warm-start record, step, patience, loss."""

    model: Any
    warm_stats: WarmRecord
    learning_rate: float
    patience: int
    ranking: dict[str, Any] | None
    # Share of real rows in the batches (user runs are padded to ``plan.group`` rows).
    real_share: float = 1.0


def start_model(
    root: str,
    tcfg: TrainConfig,
    prepared: Path,
    manifest: PreparedManifest,
    plan: Plan,
    strategy,
    warm_from: Path | None,
) -> Start:
    """Build and compile the model under ``strategy``, from random rows or a warm start.

    A warm run trains at ``warm_lr_scale`` of the step with ``warm_patience``, and its users
    new tonight are folded in (``recsys.train.foldin``) before the first step.
    """
    from recsys.splits import load_split
    from recsys.train.foldin import fold_in_users
    from recsys.train.optim import SparseTableOptimizer
    from recsys.train.ranking import check_positives, item_frequencies
    from recsys.train.warm import load_warm_start

    warm = load_warm_start(root, tcfg, prepared, manifest, warm_from)
    features = genre_matrix(prepared / "items", manifest.n_items) if tcfg.genres else None
    ranking = None
    if tcfg.objective == "ranking":
        ranking = ranking_settings(tcfg, manifest, plan.per_replica)
        log.info("ranking loss %s", ranking)
        rows = load_split(prepared, plan.trained)
        check_positives(rows[S.RATING].to_numpy(), tcfg.min_rating, f"the prepared run {prepared}")
    real_share = 1.0
    if plan.group > 1:
        real_share = user_runs.real_share(rows[S.USER_IDX].to_numpy(), plan.group)
    warmed = warm.weights is not None
    learning_rate = table_learning_rate(
        tcfg.learning_rate * (tcfg.warm_lr_scale if warmed else 1.0),
        plan.global_batch,
        tcfg.table_optimizer,
        warm=warmed,
    )
    with strategy.scope():
        model = build_model(tcfg, manifest, features, ranking)
        model.xla = bool(tcfg.jit_compile) and plan.replicas == 1
        warm_stats = warm.apply(model)
        if ranking is not None:
            model.item_freq = item_frequencies(rows[S.ITEM_IDX].to_numpy(), manifest.n_items)
            if warmed and tcfg.warm_fold_in:
                new_users = np.flatnonzero(warm.user_rows < 0)
                fold_in = fold_in_users(model, new_users, rows, ranking)
                warm_stats = replace(warm_stats, fold_in=fold_in)
        model.compile(
            optimizer=SparseTableOptimizer(
                learning_rate,
                tcfg.dense_learning_rate,
                table_method=tcfg.table_optimizer,
            ),
            **compile_options(tcfg, plan.replicas, plan.steps),
        )
    patience = tcfg.warm_patience if warmed else tcfg.patience
    return Start(model, warm_stats, learning_rate, patience, ranking, real_share)


@dataclass
class Watch:
    """The callbacks of a run and what early stopping follows (``monitor``: key, mode)."""

    callbacks: list[Any]
    monitor: tuple[str, str] | None
    val_kwargs: dict[str, Any]
    timer: Any
    progress: Any
    backup: Any  # the RecordedBackup: the whole run's history, those before a kill included


def watch_run(
    root: str,
    tcfg: TrainConfig,
    prepared: Path,
    manifest: PreparedManifest,
    ds: str,
    plan: Plan,
    start: Start,
    workdir: Path,
    validation_data,
    steps: list[float] | None = None,
    backup: Path | None = None,
) -> Watch:
    """Timer, validation, early stopping, progress, backup and TensorBoard callbacks.

    Order matters: the timer stops before the ranking validation runs, early stopping reads the
    validator's key, the progress line reads all three, and the backup
    (``recsys.train.resume``) records their state after them (a kill during validation costs
    the epoch, which the resumed run trains again). A ranking model is judged by its top-k
    lists, so its validation split is ranked after every epoch and early stopping follows its
    NDCG; a refit runs its fixed number of epochs.
    """
    from recsys.train.callbacks import RankingValidation, TrainTimer
    from recsys.train.progress import EpochProgress
    from recsys.train.resume import RecordedBackup

    timer = TrainTimer()
    backup = backup or _checkpoint_dir(root, ds, prepared, tcfg, plan.splits)
    callbacks = [timer]
    val_kwargs, monitor = {}, ("val_rmse" if plan.n_val else "rmse", "min")
    if tcfg.objective == "ranking":
        monitor = None
        if plan.n_val:
            validator = RankingValidation(
                prepared, manifest, tcfg.k, tcfg.eval_max_users, tcfg.seed
            )
            callbacks.append(validator)
            monitor = (validator.key, "max")
    elif plan.n_val:
        val_kwargs = {
            "validation_data": validation_data(),
            "validation_steps": math.ceil(plan.n_val / plan.global_batch),
        }
    if plan.splits != ("train",):
        monitor = None
    if steps:
        # Each epoch at the step the replayed run took in it (its last step beyond).
        callbacks.append(
            keras.callbacks.LearningRateScheduler(
                lambda epoch, _: steps[min(epoch, len(steps) - 1)]
            )
        )
    elif monitor is not None and tcfg.decay < 1:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor[0],
                factor=tcfg.decay,
                patience=tcfg.decay_patience,
                mode=monitor[1],
                min_delta=0.0,
                # Down to the batch-256 step: the decay takes back the batch scaling
                # (``table_learning_rate``), which a batch of 256 or a warm run never had.
                min_lr=tcfg.learning_rate,
                verbose=0,
            )
        )
    stopping = None
    if monitor is not None:
        stopping = keras.callbacks.EarlyStopping(
            monitor=monitor[0], patience=start.patience, restore_best_weights=True, mode=monitor[1]
        )
        callbacks.append(stopping)
    val_metric = monitor[0] if monitor and monitor[0].startswith("val_") else None
    rows = round(plan.steps * plan.global_batch * start.real_share)
    progress = EpochProgress(timer, rows, val_metric, early_stopping=monitor is not None)
    callbacks.append(progress)
    recorded = RecordedBackup(backup, timer, progress, stopping)
    callbacks.append(recorded)
    callbacks.append(keras.callbacks.TensorBoard(str(workdir / "tensorboard"), write_graph=False))
    return Watch(callbacks, monitor, val_kwargs, timer, progress, recorded)


def fit(
    cfg: Config,
    prepared: Path,
    manifest: PreparedManifest,
    ds: str,
    workdir: Path,
    splits: tuple[str, ...] = ("train",),
    warm_from: Path | None = None,
    steps: list[float] | None = None,
    backup: Path | None = None,
):
    """Train on ``splits``; returns the model, the Keras history and the training record.

    The model starts from ``warm_from`` or, with ``train.warm_start``, from the model served
    last night (``recsys.train.warm``); the optimiser state always starts fresh. ``steps``
    replays another run's step of each epoch (a full refit of a model whose step decayed).
    ``backup``: the folder of the backup a killed run resumes from (default: under
    ``models/_checkpoints``).
    """
    from recsys.train.strategy import make_strategy

    tcfg = resolve_train(cfg.train)
    keras.utils.set_random_seed(tcfg.seed)
    strategy = make_strategy()
    plan = plan_run(tcfg, manifest, splits, strategy.num_replicas_in_sync)
    log.info(
        "global batch %d (%d per replica), %d steps per epoch",
        plan.global_batch,
        plan.per_replica,
        plan.steps,
    )
    from recsys.train.resume import backed_up_epochs

    backup = backup or _checkpoint_dir(cfg.root, ds, prepared, tcfg, plan.splits)
    done = backed_up_epochs(backup)
    train_fn, val_fn = _input_fns(tcfg, prepared, plan, done)
    start = start_model(cfg.root, tcfg, prepared, manifest, plan, strategy, warm_from)
    validation_data = lambda: strategy.distribute_datasets_from_function(val_fn)  # noqa: E731
    watch = watch_run(
        cfg.root,
        tcfg,
        prepared,
        manifest,
        ds,
        plan,
        start,
        workdir,
        validation_data,
        steps,
        backup,
    )
    start.model.fit(
        strategy.distribute_datasets_from_function(train_fn),
        epochs=tcfg.epochs,
        steps_per_epoch=plan.steps,
        callbacks=watch.callbacks,
        verbose=0,
        **watch.val_kwargs,
    )
    history = watch.backup.history()  # every epoch, those before a kill included
    return start.model, history, training_record(plan, start, watch, history)


def training_record(plan: Plan, start: Start, watch: Watch, history) -> TrainingRecord:
    """What the model manifest's ``training`` says of the run (fields: ``TrainingRecord``)."""
    rows = round(plan.steps * plan.global_batch * start.real_share)
    return TrainingRecord(
        global_batch=plan.global_batch,
        batch_per_replica=plan.per_replica,
        replicas=plan.replicas,
        steps_per_epoch=plan.steps,
        table_learning_rate=start.learning_rate,
        table_steps=[float(f"{s:.6g}") for s in history.get("learning_rate", [])],
        ranking_loss=start.ranking,
        real_row_share=round(start.real_share, 4),
        epochs_run=len(watch.backup.seconds),
        resumed_from_epoch=watch.backup.resumed_from,
        best_epoch=_best_epoch(history, watch.monitor),
        trained_on=list(plan.splits),
        warm_start=start.warm_stats,
        epoch_seconds=[round(s, 2) for s in watch.backup.seconds],
        elapsed_seconds=[round(s, 1) for s in watch.backup.elapsed],
        ratings_per_second=round(watch.timer.throughput(rows)),
    )


def _best_epoch(history: dict[str, list[float]], monitor: tuple[str, str] | None) -> int:
    """1-based epoch of the kept weights: the monitored best, else the last epoch run."""
    runs = len(next(iter(history.values()), []))
    if monitor is None or not history.get(monitor[0]):
        return runs
    values = np.asarray(history[monitor[0]], dtype=float)
    return int(np.argmax(values) if monitor[1] == "max" else np.argmin(values)) + 1
