"""The training loop: plan the batches, build and compile the model, set the callbacks, Keras
``fit``.

``fit`` is what the train step (``recsys.train.step``) and the benchmarks call: a prepared run's
splits, where to start (``warm.Origin``, decided by the step) and where to keep the backup in; a
trained Keras model, its history and the training record out. It knows no storage root, no run
date and no manifest of a model run: the step decides those, exports, evaluates and commits.

The pieces of one step of training live with the model (``RecModel.train_step`` in
``models/base.py``, the ranking loss in ``ranking.py``); the callbacks in ``callbacks/``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from recsys import schema as S
from recsys.config import TrainConfig, resolve_train
from recsys.families import family
from recsys.manifests import PreparedManifest
from recsys.payloads import TrainingRecord, WarmRecord
from recsys.train import runs as user_runs
from recsys.train.models.build import build_model, genre_matrix, ranking_settings
from recsys.train.plan import Plan, compile_options, plan_run, table_learning_rate
from recsys.train.warm import COLD, Origin

log = logging.getLogger(__name__)


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
    tcfg: TrainConfig,
    prepared: Path,
    manifest: PreparedManifest,
    plan: Plan,
    strategy,
    origin: Origin,
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

    warm = load_warm_start(tcfg, prepared, manifest, origin)
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
    tcfg: TrainConfig,
    prepared: Path,
    manifest: PreparedManifest,
    plan: Plan,
    start: Start,
    workdir: Path,
    validation_data,
    backup: Path,
    steps: list[float] | None = None,
) -> Watch:
    """Timer, validation, early stopping, progress, backup and TensorBoard callbacks.

    Order matters: the timer stops before the ranking validation runs, early stopping reads the
    validator's key, the progress line reads all three, and the backup (``callbacks.resume``)
    records their state after them (a kill during validation costs the epoch, which the resumed
    run trains again). A ranking model is judged by its top-k
    lists, so its validation split is ranked after every epoch and early stopping follows its
    NDCG; a refit runs its fixed number of epochs.
    """
    from recsys.train.callbacks.progress import EpochProgress, TrainTimer
    from recsys.train.callbacks.resume import RecordedBackup
    from recsys.train.callbacks.validation import RankingValidation

    timer = TrainTimer()
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
    tcfg: TrainConfig,
    prepared: Path,
    manifest: PreparedManifest,
    workdir: Path,
    backup: Path,
    splits: tuple[str, ...] = ("train",),
    origin: Origin = COLD,
    steps: list[float] | None = None,
):
    """Train on ``splits``; returns the model, the Keras history and the training record.

    ``tcfg`` is resolved (``recsys.config.resolve_train``): the step resolves it once and the
    manifest records what the loop trained with.

    The model starts from ``origin`` (``recsys.train.warm``); the optimiser state always starts
    fresh. ``steps`` replays another run's step of each epoch (a full refit of a model whose step
    decayed). ``backup``: the folder of the backup a killed run resumes from; ``workdir`` gets
    the TensorBoard logs.
    """
    from recsys.train.callbacks.resume import backed_up_epochs
    from recsys.train.launch.strategy import make_strategy

    if tcfg != resolve_train(tcfg):
        raise ValueError("fit trains a resolved TrainConfig: pass recsys.config.resolve_train's")
    keras.utils.set_random_seed(tcfg.seed)
    strategy = make_strategy()
    plan = plan_run(tcfg, manifest, splits, strategy.num_replicas_in_sync)
    log.info(
        "global batch %d (%d per replica), %d steps per epoch",
        plan.global_batch,
        plan.per_replica,
        plan.steps,
    )
    train_fn, val_fn = _input_fns(tcfg, prepared, plan, backed_up_epochs(backup))
    recent = None
    if family(tcfg.model).sequence:  # windows of each user's items, not (user, item) rows
        from recsys.train.sequences import sequence_inputs

        plan, train_fn, recent = sequence_inputs(tcfg, prepared, manifest, plan)
    start = start_model(tcfg, prepared, manifest, plan, strategy, origin)
    if recent is not None:
        start.model.set_recent(recent)
    validation_data = lambda: strategy.distribute_datasets_from_function(val_fn)  # noqa: E731
    watch = watch_run(
        tcfg, prepared, manifest, plan, start, workdir, validation_data, backup, steps
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
