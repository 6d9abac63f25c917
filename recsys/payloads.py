"""The model manifest's typed payloads: where a run started, what training measured, how the
model did. :mod:`recsys.manifests` reads and writes them as part of the model manifest; the
training step builds them and the gate, the report and the CLI read their fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from recsys.typed_json import build, plain


@dataclass(frozen=True, kw_only=True)
class WarmRecord:
    """Where a run started: the model run it copied rows from (``from``; None: cold, ``reason``
    says why), and how much of it fitted tonight's users and items."""

    KEYS: ClassVar[dict[str, str]] = {"source": "from"}
    OMIT: ClassVar[tuple[str, ...]] = (
        *("reason", "model_version", "users", "items", "copied", "kept_fresh", "fold_in"),
    )
    source: str | None = None
    reason: str = ""
    model_version: str = ""
    users: int | None = None  # tonight's users found by original id (None: cold)
    items: int | None = None
    copied: list[str] | None = None  # variables copied (weight keys)
    kept_fresh: list[str] | None = None
    fold_in: dict[str, Any] | None = None  # recsys.train.foldin's record


@dataclass(frozen=True, kw_only=True)
class TrainingRecord:
    """What the training loop measured of a run (``models/`` manifest's ``training``)."""

    OMIT: ClassVar[tuple[str, ...]] = ("continued_on", "cold_rows")

    global_batch: int = 0
    batch_per_replica: int = 0
    replicas: int = 1
    steps_per_epoch: int = 0
    table_learning_rate: float = 0.0
    # The step of each epoch where it decayed on a plateau (what a full refit replays).
    table_steps: list[float] = field(default_factory=list)
    ranking_loss: dict[str, Any] | None = None  # recsys.train.ranking.RankingLoss settings
    # Real rows in the batches (the rest pad user runs; rows/s counts real rows only).
    real_row_share: float = 1.0
    epochs_run: int = 0
    # Epochs done before a kill, restored from the backup (0: the run was not interrupted).
    resumed_from_epoch: int = 0
    # The epoch whose weights were kept (early stopping restores the best): a full refit's.
    best_epoch: int | None = None
    trained_on: list[str] = field(default_factory=lambda: ["train"])
    continued_on: list[str] | None = None  # a continue refit's splits
    warm_start: WarmRecord = field(default_factory=WarmRecord)
    epoch_seconds: list[float] = field(default_factory=list)
    # Wall time at the end of each epoch, validation included: the time-to-quality clock.
    elapsed_seconds: list[float] = field(default_factory=list)
    # Ratings per second of training, first epoch (XLA compilation) excluded when possible.
    ratings_per_second: int = 0
    cold_rows: dict[str, int] | None = None  # rating models: users/items given the mean row


@dataclass(frozen=True, kw_only=True)
class Metrics:
    """How a model did (``metrics.json``): per held-out split and per baseline, metric -> value.

    A refit has no held-out rows left; it carries its evaluated twin's figures (``metrics_of``).
    """

    OMIT: ClassVar[tuple[str, ...]] = ("test", "val", "baselines", "metrics_of")

    test: dict[str, Any] = field(default_factory=dict)
    val: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics_of: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` object (sections a run lacks left out)."""
        return plain(self)

    def test_metric(self, key: str) -> float | None:
        """A test metric (``ndcg@10``), None when there is none."""
        value = self.test.get(key)
        return None if value is None else float(value)

    def baseline_metric(self, baseline: str, key: str) -> float:
        return float(self.baselines[baseline][key])


def read_metrics(data: dict[str, Any], source: str | Path = "metrics") -> Metrics:
    """The typed metrics of an evaluation's ``{"test": ..., "baselines": ...}`` object."""
    return build(Metrics, data, source, "metrics object")
