"""The train step: a prepared run in, a model run out (``recsys train``).

Reads ``prepared/`` through the storage helper, trains under the chosen distribution strategy with
Keras ``fit`` (early stopping on validation RMSE with the best weights restored, a backup that a
killed run resumes from, TensorBoard logs, fixed seeds), exports ``model.keras`` plus the numpy
arrays the scoring kernels need, evaluates with numpy only, and commits
``models/ds=<ds>/run=<run>/`` with ``manifest.json`` written last.
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
from recsys import storage
from recsys.config import Config, TrainConfig, resolve_train
from recsys.errors import RecsysError
from recsys.manifests import Dims, ModelManifest, PreparedManifest, RunRef

log = logging.getLogger(__name__)

MIN_STEPS_PER_EPOCH = 300  # the automatic batch keeps at least this many steps per epoch
MAX_AUTO_GLOBAL_BATCH = 16384  # measured best throughput per step on the 2-core CPU
# train.learning_rate is the tables' step at this global batch; other batches scale it linearly.
LR_REFERENCE_BATCH = 256


@dataclass(frozen=True)
class TrainResult:
    path: Path
    manifest: ModelManifest


def auto_global_batch(n_train: int) -> int:
    """A power of two giving >= ~300 steps per epoch, between 256 and 16384."""
    target = max(1, n_train // MIN_STEPS_PER_EPOCH)
    return int(min(MAX_AUTO_GLOBAL_BATCH, max(256, 2 ** int(math.log2(target)))))


def table_learning_rate(learning_rate: float, global_batch: int, method: str = "adagrad") -> float:
    """The tables' step for ``global_batch``: ``learning_rate`` scaled by batch / 256 (Adagrad).

    Lazy Adam (``method="adam"``) normalises each gradient by its running scale, so the mean-loss
    shrinkage with the batch does not reach its step: its rate is used as given.

    Row-wise Adagrad's update is in effect SGD on a mean loss, whose gradients shrink as the
    batch grows; scaling keeps each rating's pull on its rows the same whatever the data size or
    number of replicas (measured: docs/tuning.md).
    """
    if method == "adam":
        return float(learning_rate)
    return float(learning_rate) * global_batch / LR_REFERENCE_BATCH


def check_train_config(tcfg: TrainConfig) -> None:
    """Reject impossible settings before any TensorFlow work, in one sentence each."""
    from recsys.train.models import FAMILIES

    if tcfg.model not in FAMILIES:
        raise RecsysError(f"--model must be one of {', '.join(FAMILIES)}, got {tcfg.model!r}")
    if tcfg.objective not in ("ranking", "rating"):
        raise RecsysError(f"--objective must be ranking or rating, got {tcfg.objective!r}")
    if tcfg.table_optimizer not in (None, "adagrad", "adam"):
        raise RecsysError(
            f"train.table_optimizer must be adagrad or adam, got {tcfg.table_optimizer!r}"
        )
    if tcfg.loss not in ("softmax", "bpr"):
        raise RecsysError(f"train.loss must be softmax or bpr, got {tcfg.loss!r}")
    if tcfg.negatives < 0 or tcfg.in_batch_negatives < 0:
        raise RecsysError(
            "train.negatives and train.in_batch_negatives must be >= 0 (both 0: full softmax); "
            f"got {tcfg.negatives} and {tcfg.in_batch_negatives}"
        )
    if tcfg.input_mode not in ("auto", "memory", "stream"):
        raise RecsysError(
            f"train.input_mode must be auto, memory or stream, got {tcfg.input_mode!r}"
        )
    if tcfg.refit_mode not in ("full", "continue"):
        raise RecsysError(f"train.refit_mode must be full or continue, got {tcfg.refit_mode!r}")
    if not 0 < tcfg.warm_lr_scale <= 1:
        raise RecsysError(f"train.warm_lr_scale must be in (0, 1], got {tcfg.warm_lr_scale}")
    tcfg = resolve_train(tcfg)
    for name in ("dim", "epochs", "refit_epochs", "warm_patience"):
        if getattr(tcfg, name) < 1:
            raise RecsysError(f"train.{name} must be >= 1, got {getattr(tcfg, name)}")
    try:
        hidden = [int(h) for h in tcfg.hidden.split(",") if h.strip()]
    except ValueError:
        raise RecsysError(f"train.hidden must be sizes like 128,64, got {tcfg.hidden!r}") from None
    if not hidden or min(hidden) < 1:
        raise RecsysError(f"train.hidden must be sizes like 128,64, got {tcfg.hidden!r}")


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


def genre_matrix(items_dir: Path, n_items: int) -> np.ndarray | None:
    """Multi-hot genres per item_idx, each row normalised to sum 1: (n_items, n_genres)."""
    import pyarrow.parquet as pq

    items = pq.read_table(items_dir, columns=[S.ITEM_IDX, S.GENRES]).to_pandas()
    vocab = sorted({g for gs in items[S.GENRES] for g in gs})
    if not vocab:
        return None
    col = {g: k for k, g in enumerate(vocab)}
    out = np.zeros((n_items, len(vocab)), np.float32)
    for idx, gs in zip(items[S.ITEM_IDX], items[S.GENRES], strict=True):
        for g in gs:
            out[idx, col[g]] = 1.0
    sums = out.sum(axis=1, keepdims=True)
    return np.divide(out, sums, out=np.zeros_like(out), where=sums > 0)


def ranking_settings(tcfg: TrainConfig, manifest: PreparedManifest, batch: int) -> dict[str, Any]:
    """The ranking loss of ``tcfg`` for this data (``recsys.train.ranking.RankingLoss`` fields).

    A catalogue no larger than the sampled candidates (``negatives + in_batch_negatives``) is
    scored whole: the full softmax is exact and costs no more.
    """
    negatives, in_batch = tcfg.negatives, min(tcfg.in_batch_negatives, batch)
    if negatives + in_batch >= manifest.n_items:
        negatives, in_batch = 0, 0
    return {
        "loss": tcfg.loss,
        "negatives": int(negatives),
        "in_batch": int(in_batch),
        "min_rating": float(tcfg.min_rating),
        "rating_weights": bool(tcfg.rating_weights),
        "mean_rating": float(manifest.global_mean) or 1.0,
        "seed": int(tcfg.seed),
    }


def build_model(
    tcfg: TrainConfig,
    manifest: PreparedManifest,
    features: np.ndarray | None,
    ranking: dict[str, Any] | None = None,
):
    """The Keras model of ``tcfg.model`` sized from the prepared manifest."""
    from recsys.train.models import MODELS

    lo, hi = manifest.rating_scale
    kwargs: dict[str, Any] = {
        "dim": tcfg.dim,
        "l2": tcfg.l2,
        "rating_min": lo,
        "rating_max": hi,
        "global_mean": manifest.global_mean,
        "item_features": features,
        "init_scale": tcfg.init_scale,
        "seed": tcfg.seed,
        "objective": tcfg.objective,
        "ranking": ranking,
    }
    if tcfg.model == "biased-mf":
        kwargs.update(sigmoid=tcfg.sigmoid, bias_l2=tcfg.bias_l2)
    if tcfg.model in ("ncf", "neumf"):
        kwargs.update(hidden=tuple(int(h) for h in tcfg.hidden.split(",")), dropout=tcfg.dropout)
    model = MODELS[tcfg.model](manifest.n_users, manifest.n_items, **kwargs)
    model.build()
    return model


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


def fit(
    cfg: Config,
    prepared: Path,
    manifest: PreparedManifest,
    ds: str,
    workdir: Path,
    splits: tuple[str, ...] = ("train",),
    warm_from: Path | None = None,
):
    """Train on ``splits``; returns the model, Keras history, the global batch and ratings/s.

    The validation split steers early stopping only when training reads the train split alone;
    a refit (every split, or val + test for a continue refit) runs its fixed number of epochs.
    The model starts from ``warm_from`` or, with ``train.warm_start``, from the model served
    last night (``recsys.train.warm``); the optimiser state always starts fresh.
    """
    import tensorflow as tf

    from recsys.splits import load_split, split_dir
    from recsys.train.callbacks import RankingValidation, TrainTimer
    from recsys.train.data import ratings_dataset
    from recsys.train.foldin import fold_in_users
    from recsys.train.optim import SparseTableOptimizer
    from recsys.train.progress import EpochProgress
    from recsys.train.ranking import check_positives, item_frequencies
    from recsys.train.strategy import make_strategy
    from recsys.train.warm import load_warm_start

    tcfg = resolve_train(cfg.train)
    keras.utils.set_random_seed(tcfg.seed)
    strategy = make_strategy()
    replicas = strategy.num_replicas_in_sync
    n_train = sum(manifest.count(s) for s in splits)
    n_val = manifest.count("val") if splits == ("train",) else 0
    trained = [s for s in splits if manifest.count(s)]
    train_dirs = [split_dir(prepared, s) for s in trained]
    per_replica = tcfg.batch_per_replica or max(1, auto_global_batch(n_train) // replicas)
    global_batch = per_replica * replicas
    steps = epoch_steps(n_train, global_batch, replicas)
    ratings = prepared / "ratings"
    log.info(
        "global batch %d (%d per replica), %d steps per epoch", global_batch, per_replica, steps
    )

    in_memory = {"auto": None, "memory": True, "stream": False}[tcfg.input_mode]

    def train_fn(ctx):
        return ratings_dataset(
            train_dirs,
            global_batch_size=global_batch,
            seed=tcfg.seed,
            in_memory=in_memory,
            input_context=ctx,
            drop_remainder=n_train >= global_batch,
            epochs=None,
        )

    def val_fn(ctx):
        return ratings_dataset(
            ratings / "split=val",
            global_batch_size=global_batch,
            shuffle=False,
            input_context=ctx,
            epochs=None,
        )

    warm = load_warm_start(cfg.root, tcfg, prepared, manifest, warm_from)
    features = genre_matrix(prepared / "items", manifest.n_items) if tcfg.genres else None
    ranking = None
    if tcfg.objective == "ranking":
        ranking = ranking_settings(tcfg, manifest, per_replica)
        log.info("ranking loss %s", ranking)
        train_rows = load_split(prepared, trained)
        check_positives(
            train_rows[S.RATING].to_numpy(), tcfg.min_rating, f"the prepared run {prepared}"
        )
    warmed = warm.weights is not None
    # A warm run starts near the optimum: a smaller step, and less patience for a plateau.
    learning_rate = tcfg.learning_rate * (tcfg.warm_lr_scale if warmed else 1.0)
    patience = tcfg.warm_patience if warmed else tcfg.patience
    with strategy.scope():
        model = build_model(tcfg, manifest, features, ranking)
        model.xla = bool(tcfg.jit_compile) and replicas == 1
        warm_stats = warm.apply(model)
        if ranking is not None:
            model.item_freq = item_frequencies(train_rows[S.ITEM_IDX].to_numpy(), manifest.n_items)
            if warmed and tcfg.warm_fold_in:
                new_users = np.flatnonzero(warm.user_rows < 0)
                warm_stats["fold_in"] = fold_in_users(model, new_users, train_rows, ranking)
        model.compile(
            optimizer=SparseTableOptimizer(
                table_learning_rate(learning_rate, global_batch, tcfg.table_optimizer),
                tcfg.dense_learning_rate,
                table_method=tcfg.table_optimizer,
            ),
            **compile_options(tcfg, replicas, steps),
        )
    # Order matters: the backup is written first (a kill later in the epoch loses nothing), the
    # timer stops before the ranking validation runs, early stopping reads the validator's key,
    # the progress line reads all three.
    timer = TrainTimer()
    callbacks = [
        keras.callbacks.BackupAndRestore(
            str(_checkpoint_dir(cfg.root, ds, prepared, tcfg, splits))
        ),
        timer,
    ]
    val_kwargs, monitor = {}, ("val_rmse" if n_val else "rmse", "min")
    if tcfg.objective == "ranking":
        # Keras validates with the loss; a ranking model is judged by its top-k lists, so the
        # validation split is ranked (numpy kernels) after every epoch and early stopping
        # follows its NDCG. Without a validation split a ranking model runs all its epochs.
        monitor = None
        if n_val:
            validator = RankingValidation(
                prepared, manifest, tcfg.k, tcfg.eval_max_users, tcfg.seed
            )
            callbacks.append(validator)
            monitor = (validator.key, "max")
    elif n_val:
        val_kwargs = {
            "validation_data": strategy.distribute_datasets_from_function(val_fn),
            "validation_steps": math.ceil(n_val / global_batch),
        }
    if splits != ("train",):
        monitor = None  # a refit runs the evaluated model's best number of epochs
    if monitor is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor[0],
                patience=patience,
                restore_best_weights=True,
                mode=monitor[1],
            )
        )
    val_metric = monitor[0] if monitor and monitor[0].startswith("val_") else None
    progress = EpochProgress(
        timer, steps * global_batch, val_metric, early_stopping=monitor is not None
    )
    callbacks.append(progress)
    callbacks.append(keras.callbacks.TensorBoard(str(workdir / "tensorboard"), write_graph=False))
    history = model.fit(
        strategy.distribute_datasets_from_function(train_fn),
        epochs=tcfg.epochs,
        steps_per_epoch=steps,
        callbacks=callbacks,
        verbose=0,
        **val_kwargs,
    )
    del tf
    stats = {
        "global_batch": global_batch,
        "batch_per_replica": per_replica,
        "replicas": replicas,
        "steps_per_epoch": steps,
        "table_learning_rate": table_learning_rate(
            learning_rate, global_batch, tcfg.table_optimizer
        ),
        "ranking_loss": ranking,
        "epochs_run": len(timer.seconds),
        # The epoch whose weights were kept (early stopping restores the best one): what a
        # refit on every split runs for.
        "best_epoch": _best_epoch(history.history, monitor),
        "trained_on": list(splits),
        # {"from": model run, "users"/"items": rows found by id, ...} or {"from": None, "reason"}
        "warm_start": warm_stats,
        "epoch_seconds": [round(s, 2) for s in timer.seconds],
        # Wall time at the end of each epoch, validation included: the time-to-quality clock.
        "elapsed_seconds": [round(s, 1) for s in progress.elapsed],
        # Ratings per second of training, first epoch (XLA compilation) excluded when possible.
        "ratings_per_second": round(timer.throughput(steps * global_batch)),
    }
    return model, history.history, stats


def _best_epoch(history: dict[str, list[float]], monitor: tuple[str, str] | None) -> int:
    """1-based epoch of the kept weights: the monitored best, else the last epoch run."""
    runs = len(next(iter(history.values()), []))
    if monitor is None or not history.get(monitor[0]):
        return runs
    values = np.asarray(history[monitor[0]], dtype=float)
    return int(np.argmax(values) if monitor[1] == "max" else np.argmin(values)) + 1


def refit_config(cfg: Config, evaluated: ModelManifest) -> Config:
    """The evaluated model's resolved settings, run for its best number of epochs (``full``) or
    for ``refit_epochs`` (``continue``); the refit mode is the command's, not the evaluated
    model's. A refit never looks for last night's model itself: ``full`` re-runs the evaluated
    model's recipe from its start (``run_train``), ``continue`` starts from the evaluated model."""
    settings = dict(evaluated.train)
    mode, epochs = cfg.train.refit_mode, cfg.train.refit_epochs
    best = max(1, int(evaluated.best_epoch or settings["epochs"]))
    settings.update(
        warm_start=False,
        refit_mode=mode,
        refit_epochs=epochs,
        epochs=epochs if mode == "continue" else best,
    )
    return replace(cfg, train=TrainConfig(**settings))


def run_train(
    cfg: Config,
    ds: str | None = None,
    run: str | None = None,
    prepared_ds: str | None = None,
    prepared_run: str | None = None,
    refit_of: Path | None = None,
) -> TrainResult:
    """Train, export, evaluate and commit one model run.

    ``refit_of`` (a model run folder): train again with that model's settings, for its best
    number of epochs, on every split of its prepared run, so the newest interactions reach the
    served model; with ``train.refit_mode=continue``, start from that model and train
    ``train.refit_epochs`` on the val and test rows only. A refit has no held-out rows, so it
    carries the evaluated model's metrics (``metrics_of``) instead of its own.
    """
    import tensorflow as tf

    import recsys
    from recsys.artifact import Scorer
    from recsys.evaluate.prepared import evaluate_prepared

    evaluated = None
    if refit_of is not None:
        evaluated = ModelManifest.read(refit_of)
        prepared = evaluated.prepared.folder  # retention keeps what a model needs
        held_out = PreparedManifest.read(prepared)
        if cfg.train.refit_mode == "continue" and not held_out.count("val") + held_out.count(
            "test"
        ):
            log.info("%s has no val or test rows to continue on: a full refit", prepared)
            cfg = replace(cfg, train=replace(cfg.train, refit_mode="full"))
        cfg = refit_config(cfg, evaluated)
    check_train_config(cfg.train)
    cfg = replace(cfg, train=resolve_train(cfg.train))
    family = cfg.train.model
    ds = storage.check_ds(ds or storage.today_utc())
    if evaluated is None:
        prepared = storage.resolve(cfg.root, "prepared", prepared_ds, prepared_run)
    manifest = PreparedManifest.read(prepared)
    splits, warm_from = ("train",), None
    if evaluated is not None and cfg.train.refit_mode == "continue":
        splits, warm_from = ("val", "test"), refit_of
    elif evaluated is not None:
        splits = ("train", "val", "test")
        # A full refit re-runs the evaluated model's recipe, its start included: a model that
        # warm-started and stopped after one epoch would otherwise be refitted for one epoch from
        # random rows (docs/tuning.md, "Warm start").
        warm_from = evaluated.warm_source
    if manifest.implicit and cfg.train.objective == "rating":
        raise RecsysError(
            f"the prepared run {prepared} holds implicit events (no rating column), so "
            "--objective rating has nothing to fit; use a log with ratings"
        )
    if manifest.count("train") == 0:
        raise RecsysError(f"the prepared run {prepared} has no train rows")
    paths = storage.new_run(cfg.root, "models", ds, run)
    model, history, stats = fit(cfg, prepared, manifest, ds, paths.staging, splits, warm_from)
    if splits == ("val", "test"):  # continue refit: the evaluated model's train rows, then these
        stats = {**stats, "trained_on": ["train", *splits], "continued_on": list(splits)}
    if cfg.train.objective == "rating":  # users/items without a trained row: the mean row
        from recsys.splits import load_split
        from recsys.train.models import fill_cold_rows

        trained = [s for s in stats["trained_on"] if manifest.count(s)]
        rows = load_split(prepared, trained, columns=(S.USER_IDX, S.ITEM_IDX))
        stats["cold_rows"] = fill_cold_rows(
            model, rows[S.USER_IDX].to_numpy(), rows[S.ITEM_IDX].to_numpy()
        )

    model.save(paths.staging / "model.keras")
    arrays = model.export_arrays()
    np.savez(paths.staging / "arrays.npz", **arrays)
    if evaluated is None:
        metrics = evaluate_prepared(
            Scorer(arrays), prepared, k=cfg.train.k, max_users=cfg.train.eval_max_users
        )
    else:  # every held-out row was trained on: the evaluated twin's figures stand for it
        metrics = {**evaluated.metrics, "metrics_of": str(refit_of)}
    (paths.staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (paths.staging / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    from recsys.evaluate.report import write_report
    from recsys.splits import load_split

    test = load_split(prepared, "test") if manifest.count("test") and not evaluated else None
    ratings = None
    if test is not None and not manifest.implicit and cfg.train.objective == "rating":
        pred = Scorer(arrays).predict(test[S.USER_IDX].to_numpy(), test[S.ITEM_IDX].to_numpy())
        ratings = (test[S.RATING].to_numpy(), pred)
    write_report(paths.staging, metrics, history, cfg.train.k, ratings, f"{family} on {ds}")
    out = ModelManifest(
        ds=ds,
        run=paths.run,
        model_version=f"{family}-{ds}-{paths.run}",
        family=family,
        objective=cfg.train.objective,
        dims=Dims(users=manifest.n_users, items=manifest.n_items, dim=cfg.train.dim),
        side_features=int(getattr(model, "n_features", 0)),
        rating_range=manifest.rating_scale,
        prepared=RunRef.of(manifest, prepared),
        train=asdict(cfg.train),
        training=stats,
        refit_of=None if evaluated is None else RunRef.of(evaluated, refit_of),
        metrics=metrics,
        versions={
            "recsys": recsys.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
    )
    final = storage.commit(paths, out, backwards=cfg.move_latest_backwards)
    log.info("trained %s -> %s", out.model_version, final)
    return TrainResult(final, out)
