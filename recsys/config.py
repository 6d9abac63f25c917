"""Typed, frozen configuration with commented defaults.

The defaults are the embedded ones: a laptop with local Spark and files under ``./var``. A YAML file
(``--config``) and ``--set section.key=value`` overrides change them; command-line options of a
step override both. Nothing here does work at import time.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys.errors import RecsysError
from recsys.families import NAMES as FAMILY_NAMES
from recsys.overrides import apply, parse_overrides


def default_root() -> str:
    """Storage root: ``RECSYS_ROOT`` or ``./var`` (object-store URIs work too)."""
    return os.environ.get("RECSYS_ROOT", "./var")


@dataclass(frozen=True)
class SparkConfig:
    """Spark settings; applied only when recsys starts the JVM (not under ``spark-submit``)."""

    # All local cores. In production this is the cluster URL (or spark-submit's --master wins).
    master: str = "local[*]"
    # The default 1g heap is too small for a 25M-row input; local mode must set it before the JVM
    # starts, which is why it lives here and not in code that runs after the session exists.
    driver_memory: str = "6g"
    # Per-executor heap on a cluster (unused in local mode, where the driver does the work).
    executor_memory: str = "4g"
    # Spark's default of 200 is tuned for clusters; a 2-core laptop pays per-task overhead for
    # each. 4 x cores keeps tasks a few hundred MB each on a 25M-row input.
    shuffle_partitions: int = 8
    # Rows per Arrow batch in pandas UDFs: bounds Python worker memory per batch.
    arrow_batch_size: int = 10_000
    # Any other spark.* setting, e.g. {"spark.local.dir": "/mnt/tmp"}.
    conf: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceConfig:
    """Where the raw log is and how to read it."""

    # File or folder of the raw log (a MovieLens folder, or a CSV/Parquet log).
    input: str = ""
    # MovieLens format name or "csv"/"parquet"; empty means detect from the folder.
    format: str = ""
    # Separate test file for the "given" split (e.g. ml-100k's u1.test).
    test_input: str = ""
    # Generic logs: column names. An empty rating column means implicit feedback (rating 1.0).
    user_col: str = "user_id"
    item_col: str = "item_id"
    rating_col: str = "rating"
    ts_col: str = "timestamp"
    # Generic CSV field separator.
    sep: str = ","
    # Generic CSV: read line breaks inside quoted fields (RFC 4180). Off by default: Spark then
    # reads each file in one task; a row broken by such a line break is quarantined as
    # wrong_field_count, never read as two rows.
    csv_multiline: bool = False
    # Declared rating scale; NaN means the format's own (MovieLens 1-5 or 0.5-5).
    rating_min: float = float("nan")
    rating_max: float = float("nan")


@dataclass(frozen=True)
class PrepareConfig:
    """Validation, cleaning and splitting."""

    # Fail when more than this share of input rows is rejected (the quarantine is kept).
    max_reject_fraction: float = 0.01
    # Duplicate (user, item) rows: keep the "latest" or "earliest" by timestamp.
    dedupe: str = "latest"
    # k-core filtering, applied before indexing; 0 disables. Iterated until stable.
    min_user_ratings: int = 0
    min_item_ratings: int = 0
    # random | temporal | leave-last | return | given | stratified. Leave-last is the standard for
    # top-N metrics; return asks it after a pause; stratified is the Microsoft Recommenders
    # benchmark protocol (see split.py).
    split: str = "leave-last"
    # stratified: keep each item's (or user's) share of rows in train and test.
    stratify_by: str = "item"
    # random/temporal/stratified: share of rows for test.
    test_fraction: float = 0.2
    # random/temporal/given/stratified: share of train carved out as validation (early stopping
    # needs it).
    val_fraction: float = 0.1
    # leave-last: each user's last N rows go to test, the N before those to validation
    # (0 disables validation). Users need more than test+val rows to get any held out.
    leave_last: int = 1
    leave_last_val: int = 1
    # return: the shortest pause that makes a user's next row a return (s, m, h or d). A day
    # separates one evening's session from the next visit on MovieLens and most logs.
    gap: str = "1d"
    # Seed of the hash that assigns random splits (independent of Spark's partitioning).
    seed: int = 42
    # Drift guard: refuse an input whose rows, users or items fall below this share of the
    # previous prepared run's (prepared/_LATEST); a half-empty export is not a night. 0 = off.
    min_share: float = 0.5


@dataclass(frozen=True)
class TrainConfig:
    """Model and training settings. The defaults are the tuned ones; the measurements behind
    them are in ``docs/tuning.md``.

    Settings left at ``None`` take the tuned default of the objective (``OBJECTIVE_DEFAULTS``):
    a ranking model and a rating model want different regularisation, steps and epochs.
    """

    # ranking | rating. ranking learns which items users choose, what the top-N table needs
    # (it ranks far better: docs/tuning.md); rating is the classic MSE models.
    objective: str = "ranking"
    # mf | biased-mf | ncf | neumf. Biased MF ranked and rated best on MovieLens 100K.
    model: str = "biased-mf"
    # Embedding width; wider gave nothing (rating 128, ranking 64). None: the objective's default.
    dim: int | None = None
    # Per-example L2 on the looked-up user and item vectors, so a row's penalty grows with its
    # ratings (as ALS-WR) and one value suits any data size; 0.05 is safe under both splits.
    # None: the objective's default.
    l2: float | None = None
    # Per-example L2 on the looked-up biases (biased-mf); 0.001 and 0.05 were no better.
    bias_l2: float = 0.01
    # biased-mf, rating objective: squash through a sigmoid scaled to the rating range.
    sigmoid: bool = True
    # ncf / neumf: dense tower sizes, comma separated, and dropout after each layer.
    hidden: str = "128,64"
    dropout: float = 0.2
    # Use item side features (genres) when the prepared items carry them.
    genres: bool = True
    # Rows per replica per step; 0 picks one from the training-set size (>= ~300 steps/epoch).
    batch_per_replica: int = 0
    # auto | memory | stream: hold the train split in memory (a full permutation each epoch) or
    # stream it from Parquet in shuffled chunks; auto holds up to 50M rows (600 MB) in memory.
    input_mode: str = "auto"
    # The tables' step at a global batch of 256: row-wise Adagrad's scales linearly with the
    # batch (its update is in effect SGD), lazy Adam's with its square root (a warm run's: as
    # given). None: the objective's default.
    learning_rate: float | None = None
    # Optimiser of the embedding tables, both row-sparse (recsys.train.optim): adagrad (row-wise)
    # or adam (lazy). None: adagrad for rating models (tuned with it), adam for ranking ones (the
    # softmax's small early gradients leave Adagrad crawling).
    table_optimizer: str | None = None
    # Adam step of dense weights (MLP towers, side-feature tables).
    dense_learning_rate: float = 0.001
    # Standard deviation of the initial embeddings: small starts let the factors grow only where
    # the data asks.
    init_scale: float = 0.01
    # Upper bound on epochs; early stopping on the validation split usually ends sooner.
    # None: the objective's default.
    epochs: int | None = None
    # Epochs without validation improvement before stopping (best weights are restored); the
    # ranking validation is noisy, so it waits longer (docs/quality.md). None: the objective's
    # default.
    patience: int | None = None
    # On a validation plateau of ``decay_patience`` epochs, multiply the tables' step by
    # ``decay`` (1: never), down to ``learning_rate``: the large step of a large batch finds the
    # plateau fast, the smaller one then climbs it. None: the objective's default.
    decay: float | None = None
    decay_patience: int = 2
    # Ranking loss: softmax (full, or sampled with log-Q correction) or bpr (kept to compare).
    loss: str = "softmax"
    # Ranking, sampled softmax: items drawn uniformly from the catalogue and shared by a batch,
    # and other rows' chosen items, both log-Q corrected; as good as the full softmax and faster
    # (docs/tuning.md). A catalogue no larger than the two (or both 0) gets the full softmax.
    negatives: int = 256
    in_batch_negatives: int = 256
    # Ranking, sampled softmax, mf / biased-mf: a batch holds each user's rows in runs of this
    # many, and candidates are scored once per run, not per row: the same loss at a fraction of
    # the candidate work (docs/training-throughput.md). 1: rows in any order.
    user_group: int = 4
    # Ranking: rows rated below this are not choices (e.g. 4 keeps only liked items); NaN: every
    # row counts (what a rating log and an implicit log both say: the user chose the item).
    min_rating: float = math.nan  # the one NaN object, as manifests read it back (equality)
    # Ranking: weight each row by its rating over the mean rating (a 5 counts more than a 1).
    rating_weights: bool = False
    # Seeds TF, Keras and the input order: the same run twice gives the same model.
    seed: int = 0
    # XLA-compile the train step (faster on CPU: docs/training-throughput.md).
    jit_compile: bool = True
    # Ranking metrics cut-off.
    k: int = 10
    # Rank at most this many (seeded) test users for ranking metrics; 0 = all. Ranking every
    # user of a 25M set against all items takes minutes; 20k users keep the error small.
    eval_max_users: int = 20_000
    # Start from the model served last night (rows matched by original id, recsys.train.warm)
    # instead of random rows. On in the nightly DAG; off for a one-off `recsys train`.
    warm_start: bool = False
    # A warm run's step (a share of learning_rate) and patience: last night's rows are near their
    # optimum, and fresh Adam moments make full first steps a jolt (docs/training-throughput.md).
    warm_lr_scale: float = 0.5
    warm_patience: int = 3
    # Solve the rows of users new tonight against the copied item vectors (recsys.train.foldin).
    warm_fold_in: bool = True
    # How `recsys train --refit` brings the held-out rows into the served model: continue trains
    # the evaluated model on the val + test rows only; full re-runs its recipe on every split for
    # its best epoch count. On ML-100K's real time order continue predicts the users' next rows
    # better than full, at a few seconds against minutes at ml-25m size (docs/tuning.md).
    refit_mode: str = "continue"
    # continue: epochs over the val + test rows, at refit_lr_scale x learning_rate. 4 at 0.5
    # gained most on ML-100K's time order of the settings that lose nothing on a log without it
    # (docs/tuning.md); more pulls users towards their newest rows alone.
    refit_epochs: int = 4
    refit_lr_scale: float = 0.5
    # Spark tasks of `jobs/train.py`'s barrier stage, one TensorFlow worker each
    # (MultiWorkerMirroredStrategy); the global batch and the step do not depend on it. 1: one
    # task, as `recsys train` trains on one machine. `recsys train` itself ignores it.
    workers: int = 1


# Tuned defaults of the settings left at None, per objective (measured: docs/tuning.md).
OBJECTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    "rating": {
        "dim": 128,
        "l2": 0.05,
        "learning_rate": 0.5,
        "epochs": 60,
        "patience": 3,
        "decay": 1.0,
        "table_optimizer": "adagrad",
    },
    "ranking": {
        "dim": 64,
        "l2": 0.05,
        "learning_rate": 0.002,
        "epochs": 40,
        "patience": 10,
        "decay": 0.5,
        "table_optimizer": "adam",
    },
}


def resolve_train(tcfg: TrainConfig) -> TrainConfig:
    """``tcfg`` checked (``check_train_config``), every ``None`` replaced by its objective's
    tuned default: what a run trains with and its manifest records."""
    check_train_config(tcfg)
    return _with_defaults(tcfg)


def _with_defaults(tcfg: TrainConfig) -> TrainConfig:
    defaults = OBJECTIVE_DEFAULTS.get(tcfg.objective, OBJECTIVE_DEFAULTS["ranking"])
    unset = {k: v for k, v in defaults.items() if getattr(tcfg, k) is None}
    return dataclasses.replace(tcfg, **unset)


_TRAIN_CHOICES = {
    "table_optimizer": (None, "adagrad", "adam"),
    "loss": ("softmax", "bpr"),
    "input_mode": ("auto", "memory", "stream"),
    "refit_mode": ("full", "continue"),
}


def check_train_config(tcfg: TrainConfig) -> None:
    """Reject impossible settings before any TensorFlow work, in one sentence each."""
    if tcfg.model not in FAMILY_NAMES:
        raise RecsysError(f"--model must be one of {', '.join(FAMILY_NAMES)}, got {tcfg.model!r}")
    if tcfg.objective not in ("ranking", "rating"):
        raise RecsysError(f"--objective must be ranking or rating, got {tcfg.objective!r}")
    for name, choices in _TRAIN_CHOICES.items():
        if getattr(tcfg, name) not in choices:
            named = [c for c in choices if c]
            raise RecsysError(
                f"train.{name} must be {', '.join(named[:-1])} or {named[-1]}, "
                f"got {getattr(tcfg, name)!r}"
            )
    if tcfg.negatives < 0 or tcfg.in_batch_negatives < 0:
        raise RecsysError(
            "train.negatives and train.in_batch_negatives must be >= 0 (both 0: full softmax); "
            f"got {tcfg.negatives} and {tcfg.in_batch_negatives}"
        )
    if tcfg.user_group < 1:
        raise RecsysError(f"train.user_group must be >= 1, got {tcfg.user_group}")
    for name in ("decay", "warm_lr_scale", "refit_lr_scale"):
        value = getattr(tcfg, name)
        if value is not None and not 0 < value <= 1:
            raise RecsysError(f"train.{name} must be in (0, 1], got {value}")
    tcfg = _with_defaults(tcfg)
    for name in ("dim", "epochs", "refit_epochs", "warm_patience", "decay_patience"):
        if getattr(tcfg, name) < 1:
            raise RecsysError(f"train.{name} must be >= 1, got {getattr(tcfg, name)}")
    try:
        hidden = [int(h) for h in tcfg.hidden.split(",") if h.strip()]
    except ValueError:
        hidden = []
    if not hidden or min(hidden) < 1:
        raise RecsysError(f"train.hidden must be sizes like 128,64, got {tcfg.hidden!r}")


@dataclass(frozen=True)
class GateConfig:
    """What a new model must beat before its table is published (``recsys gate``)."""

    # The model's test NDCG@k must be at least (1 + min_lift) x the popularity list's.
    min_lift: float = 0.0
    # ... and at least (1 - tolerance) x the last published model's NDCG@k, that model
    # re-evaluated on today's test users through original ids. Retrained nightly on almost the
    # same data, a model's NDCG moves a few per cent from the seed alone; 0.1 refuses a real drop.
    tolerance: float = 0.1
    # Test users ranked for the comparison with the published model (seeded sample; 0 = all).
    max_users: int = 20_000


@dataclass(frozen=True)
class PublishConfig:
    """What a scored table must hold before ``recsys publish`` makes it live."""

    # Drift guard: refuse a table covering fewer users than this share of the live table's.
    min_share: float = 0.5


@dataclass(frozen=True)
class RetentionConfig:
    """How long runs are kept (``recsys retention``)."""

    # Runs whose ds is older than this many days before the reference date are deleted, except
    # what a ``_LATEST`` pointer names and what those runs depend on.
    days: int = 14


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    root: str = field(default_factory=default_root)
    spark: SparkConfig = field(default_factory=SparkConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    # A table's _LATEST only moves forward in ds; true lets a backfill of an older ds move it.
    move_latest_backwards: bool = False


def load_config(
    path: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
    root: str | None = None,
    **sections: dict[str, Any],
) -> Config:
    """Build a config: defaults, then the YAML file, then ``--set`` pairs, then ``sections``.

    ``sections`` are the typed options of a command (``prepare={"split": "random"}``); values that
    are ``None`` are skipped so unset command-line flags keep the lower layers' values.
    """
    cfg = Config()
    if path:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise RecsysError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise RecsysError(f"config file {p} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise RecsysError(f"config file {p} must hold a mapping of sections")
        cfg = apply(cfg, data)
    if overrides:
        cfg = apply(cfg, parse_overrides(overrides))
    for name, values in sections.items():
        clean = {k: v for k, v in (values or {}).items() if v is not None}
        if clean:
            cfg = apply(cfg, {name: clean})
    if root:
        cfg = dataclasses.replace(cfg, root=str(root))
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-dict view for manifests and logs."""
    return dataclasses.asdict(cfg)
