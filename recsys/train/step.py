"""The train step: a prepared run in, a model run out (``recsys train``).

It decides, the loop trains. ``run_train`` reads the job (the prepared run, or the evaluated model
a refit refits), decides where the run starts (cold, warm from the model served last night, or
continuing the evaluated model: ``recsys.train.warm.origin``) and where its backup waits
(``backup_dir``); then ``recsys.train.loop.fit`` trains (early stopping on the validation split
with the best weights restored, a backup a killed run resumes from, TensorBoard logs, fixed
seeds); then the step exports ``model.keras`` plus the numpy arrays the scoring kernels need,
evaluates with numpy only, and commits ``models/ds=<ds>/run=<run>/`` with ``manifest.json`` last.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np

from recsys import integrity, storage
from recsys import schema as S
from recsys.config import Config, TrainConfig, resolve_train
from recsys.errors import RecsysError, ensure_space, writing
from recsys.manifests import Dims, ModelManifest, PreparedManifest, RunRef
from recsys.payloads import Metrics, TrainingRecord, read_metrics
from recsys.train.callbacks.resume import model_bytes
from recsys.train.loop import fit
from recsys.train.warm import COLD, Origin, origin

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    path: Path
    manifest: ModelManifest


@dataclass(frozen=True)
class TrainJob:
    """What one run trains on: the prepared run, the splits, the start, the model it refits."""

    prepared: Path
    manifest: PreparedManifest
    splits: tuple[str, ...] = ("train",)
    start: Origin = COLD  # where the loop starts (decided here, never by the loop)
    evaluated: ModelManifest | None = None
    refit_of: Path | None = None
    steps: list[float] | None = None  # the tables' step of each epoch, replayed (a full refit)


def refit_config(cfg: Config, evaluated: ModelManifest) -> Config:
    """The evaluated model's resolved settings, run for its best number of epochs (``full``) or
    for ``refit_epochs`` at ``refit_lr_scale`` of its step (``continue``); the refit settings are
    the command's, not the evaluated model's. A refit never looks for last night's model itself:
    ``full`` re-runs the evaluated model's recipe from its start (``run_train``), ``continue``
    starts from the evaluated model."""
    settings = evaluated.train
    mode, epochs = cfg.train.refit_mode, cfg.train.refit_epochs
    best = max(1, int(evaluated.best_epoch or settings.epochs))
    changes: dict[str, Any] = dict(
        warm_start=False,
        workers=cfg.train.workers,  # the cluster of tonight's refit, not the evaluated run's
        refit_mode=mode,
        refit_epochs=epochs,
        refit_lr_scale=cfg.train.refit_lr_scale,
        epochs=epochs if mode == "continue" else best,
    )
    if mode == "continue":  # it starts from the evaluated model: a warm run at the refit's step
        changes["warm_lr_scale"] = cfg.train.refit_lr_scale
    return replace(cfg, train=replace(settings, **changes))


def refit_job(cfg: Config, refit_of: Path) -> tuple[Config, TrainJob]:
    """The refit of the model run ``refit_of``: its settings, its prepared run, the mode's splits.

    ``continue`` trains the evaluated model on the val + test rows; a prepared run without such
    rows gets a ``full`` refit (every split, from the evaluated model's own start) instead.
    """
    evaluated = ModelManifest.read(refit_of)
    integrity.check_model(refit_of, evaluated)
    prepared = evaluated.prepared.folder  # retention keeps what a model needs
    manifest = PreparedManifest.read(prepared)
    if cfg.train.refit_mode == "continue" and not manifest.count("val") + manifest.count("test"):
        log.info("%s has no val or test rows to continue on: a full refit", prepared)
        cfg = replace(cfg, train=replace(cfg.train, refit_mode="full"))
    cfg = refit_config(cfg, evaluated)
    if cfg.train.refit_mode == "continue":
        splits, warm_from = ("val", "test"), refit_of
    else:
        # A full refit re-runs the evaluated model's recipe, its start included: a model that
        # warm-started and stopped after one epoch would otherwise be refitted for one epoch from
        # random rows (docs/tuning.md, "Warm start").
        splits, warm_from = ("train", "val", "test"), evaluated.warm_source
    start = origin(cfg.root, cfg.train, warm_from)  # the refit's start: never last night's
    # A full refit has no validation to decay on: it replays the evaluated model's steps.
    steps = evaluated.training.table_steps or None if splits != ("val", "test") else None
    return cfg, TrainJob(prepared, manifest, splits, start, evaluated, refit_of, steps)


def check_job(cfg: Config, job: TrainJob) -> None:
    """Refuse a prepared run this training cannot use (or that differs from its manifest), in
    one sentence."""
    integrity.check_prepared(job.prepared, job.manifest)
    if job.manifest.implicit and cfg.train.objective == "rating":
        raise RecsysError(
            f"the prepared run {job.prepared} holds implicit events (no rating column), so "
            "--objective rating has nothing to fit; use a log with ratings"
        )
    if job.manifest.count("train") == 0:
        raise RecsysError(f"the prepared run {job.prepared} has no train rows")


def after_fit(cfg: Config, job: TrainJob, model, stats: TrainingRecord) -> TrainingRecord:
    """The record completed: a continue refit's splits; rating models' rows of cold users and
    items set to the mean trained row."""
    if job.splits == ("val", "test"):  # the evaluated model's train rows, then these
        stats = replace(stats, trained_on=["train", *job.splits], continued_on=list(job.splits))
    if cfg.train.objective == "rating":
        from recsys.splits import load_split
        from recsys.train.models.cold import fill_cold_rows

        trained = [s for s in stats.trained_on if job.manifest.count(s)]
        rows = load_split(job.prepared, trained, columns=(S.USER_IDX, S.ITEM_IDX))
        cold = fill_cold_rows(model, rows[S.USER_IDX].to_numpy(), rows[S.ITEM_IDX].to_numpy())
        stats = replace(stats, cold_rows=cold)
    return stats


def write_artifacts(
    cfg: Config, job: TrainJob, staging: Path, model, history, title: str
) -> Metrics:
    """``model.keras``, ``arrays.npz``, ``metrics.json``, ``history.json`` and the report;
    returns the metrics. A refit has no held-out rows left: its evaluated twin's figures stand
    for it (``metrics_of``)."""
    from recsys.artifact import Scorer
    from recsys.evaluate.prepared import evaluate_prepared
    from recsys.evaluate.report import write_report
    from recsys.splits import load_split

    ensure_space(staging / "model.keras", model_bytes(model))  # h5py crashes on a full disk
    with writing(staging / "model.keras"):
        model.save(staging / "model.keras")
    arrays = model.export_arrays()
    with writing(staging / "arrays.npz"):
        np.savez(staging / "arrays.npz", **arrays)
    k = cfg.train.k
    if job.evaluated is None:
        evaluated = evaluate_prepared(
            Scorer(arrays), job.prepared, k=k, max_users=cfg.train.eval_max_users
        )
        metrics = read_metrics(evaluated, staging / "metrics.json")
    else:
        metrics = replace(job.evaluated.metrics, metrics_of=str(job.refit_of))
    for name, data in (("metrics.json", metrics.to_dict()), ("history.json", history)):
        with writing(staging / name):
            (staging / name).write_text(json.dumps(data, indent=2) + "\n")
    ratings = None
    rated = not job.manifest.implicit and cfg.train.objective == "rating"
    if job.evaluated is None and job.manifest.count("test") and rated:
        test = load_split(job.prepared, "test")
        pred = Scorer(arrays).predict(test[S.USER_IDX].to_numpy(), test[S.ITEM_IDX].to_numpy())
        ratings = (test[S.RATING].to_numpy(), pred)
    with writing(staging / "report.md"):
        write_report(staging, metrics, history, k, ratings, title)
    return metrics


def model_manifest(cfg: Config, job: TrainJob, ds: str, run: str, model, stats, metrics, staging):
    """The model run's contract (``staging``: the folder whose artifacts it checksums)."""
    import tensorflow as tf

    import recsys

    family, manifest = cfg.train.model, job.manifest
    return ModelManifest(
        ds=ds,
        run=run,
        model_version=f"{family}-{ds}-{run}",
        family=family,
        objective=cfg.train.objective,
        dims=Dims(users=manifest.n_users, items=manifest.n_items, dim=cfg.train.dim),
        side_features=int(getattr(model, "n_features", 0)),
        rating_range=manifest.rating_scale,
        prepared=RunRef.of(manifest, job.prepared),
        train=cfg.train,
        training=stats,
        refit_of=None if job.evaluated is None else RunRef.of(job.evaluated, job.refit_of),
        metrics=metrics,
        artifacts=integrity.model_checksums(staging),
        versions={
            "recsys": recsys.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
    )


def backup_dir(root: str, ds: str, job: TrainJob, tcfg: TrainConfig) -> Path:
    """Where a killed run's backup waits: same ds, prepared run, splits and settings -> same
    folder."""
    key = {"prepared": str(job.prepared.resolve()), "train": asdict(tcfg)}
    if job.splits != ("train",):
        key["splits"] = list(job.splits)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(root) / "models" / "_checkpoints" / f"ds={ds}" / digest


def train_as_peer(cfg: Config, job: TrainJob, ds: str) -> None:
    """A worker other than the chief of a multi-worker run: trains in step with the chief
    (every variable update is a collective), writing its backup and logs to scratch space that
    is removed afterwards. A chief resuming from its backup is joined from a copy of that backup,
    so that every worker restarts at the same epoch and weights."""
    scratch = Path(tempfile.mkdtemp(prefix="recsys-peer-"))
    try:
        chief_backup = backup_dir(cfg.root, ds, job, cfg.train)
        backup = scratch / "backup"
        if chief_backup.is_dir():
            shutil.copytree(chief_backup, backup)
        fit(
            cfg.train, job.prepared, job.manifest, scratch, backup, job.splits, job.start, job.steps
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def read_job(
    cfg: Config,
    ds: str,
    run: str | None,
    prepared_ds: str | None,
    prepared_run: str | None,
    refit_of: Path | None,
) -> tuple[Config, TrainJob]:
    """The run's settings (resolved and checked) and its job, its start decided."""
    job = None
    if refit_of is not None:
        cfg, job = refit_job(cfg, refit_of)
    cfg = replace(cfg, train=resolve_train(cfg.train))
    if job is None:
        prepared = storage.resolve(cfg.root, "prepared", prepared_ds, prepared_run)
        job = TrainJob(prepared, PreparedManifest.read(prepared))
    check_job(cfg, job)
    if run and (storage.RunPaths(cfg.root, "models", ds, run).final / storage.MANIFEST).is_file():
        # Every worker refuses, not only the chief (whose new_run would): a peer left alone
        # would wait for the chief's first collective forever.
        raise RecsysError(
            f"{storage.RunPaths(cfg.root, 'models', ds, run).final} already exists; runs are "
            "immutable, so pass a new --run id"
        )
    if job.evaluated is None:  # tonight's run: cold, or warm from the model served last night
        job = replace(job, start=origin(cfg.root, cfg.train))
    return cfg, job


def run_train(
    cfg: Config,
    ds: str | None = None,
    run: str | None = None,
    prepared_ds: str | None = None,
    prepared_run: str | None = None,
    refit_of: Path | None = None,
) -> TrainResult | None:
    """Train, export, evaluate and commit one model run.

    ``refit_of`` (a model run folder): bring the held-out rows into that model (``refit_job``):
    ``train.refit_mode=continue`` trains it ``train.refit_epochs`` on the val and test rows,
    ``full`` re-runs its settings on every split for its best number of epochs. A refit carries
    the evaluated model's metrics (``metrics_of``) instead of its own.

    Under a ``TF_CONFIG`` of several workers only the chief commits (and returns the result);
    the others train in step with it (``train_as_peer``) and return None.
    """
    from recsys.train.launch.strategy import is_chief

    ds = storage.check_ds(ds or storage.today_utc())
    cfg, job = read_job(cfg, ds, run, prepared_ds, prepared_run, refit_of)
    if not is_chief():
        return train_as_peer(cfg, job, ds)
    paths = storage.new_run(cfg.root, "models", ds, run)
    backup = backup_dir(cfg.root, ds, job, cfg.train)
    model, history, stats = fit(
        cfg.train, job.prepared, job.manifest, paths.staging, backup, job.splits, job.start,
        job.steps,
    )  # fmt: skip
    stats = after_fit(cfg, job, model, stats)
    title = f"{cfg.train.model} on {ds}"
    metrics = write_artifacts(cfg, job, paths.staging, model, history, title)
    out = model_manifest(cfg, job, ds, paths.run, model, stats, metrics, paths.staging)
    final = storage.commit(paths, out, backwards=cfg.move_latest_backwards)
    log.info("trained %s -> %s", out.model_version, final)
    return TrainResult(final, out)
