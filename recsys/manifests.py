"""The contracts between the steps: one frozen dataclass per table's ``manifest.json``.

Each step writes its run's manifest last (:func:`recsys.storage.commit`) and the next step reads
it back here, typed: nothing else reads a manifest by string key. A manifest carries
``format_version``; one without it was written before versions existed and reads as version 1.
A manifest of a newer version, or of the wrong shape, fails in one sentence naming the file.
Keys this version does not know are kept (``extra``) and written back unchanged.

The model manifest carries typed payloads: the resolved :class:`~recsys.config.TrainConfig`
(``train``), the :class:`~recsys.payloads.TrainingRecord` (``training``) and the
:class:`~recsys.payloads.Metrics` (their classes live in :mod:`recsys.payloads`). Older model
manifests load through one conversion, :func:`upgrade_model`, so a refit of an older model
(``recsys.train.step.refit_config``) rebuilds its settings without a TypeError.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from recsys import storage
from recsys.config import TrainConfig
from recsys.payloads import Metrics, TrainingRecord
from recsys.typed_json import ManifestError, build, plain

log = logging.getLogger(__name__)

FORMAT_VERSION = 1

M = TypeVar("M", bound="Manifest")


@dataclass(frozen=True, kw_only=True)
class RunRef:
    """Another run this one was made from (its folder is what matters; ds and run name it)."""

    path: str
    ds: str = ""
    run: str = ""

    @property
    def folder(self) -> Path:
        return Path(self.path)

    @classmethod
    def of(cls, manifest: Manifest, folder: Path) -> RunRef:
        return cls(ds=manifest.ds, run=manifest.run, path=str(folder))

    def rooted(self, root: Path) -> RunRef:
        """Its folder under ``root``: a relative path joined to it; an absolute one (older
        manifests) kept while it exists, else re-rooted as ``<table>/ds=<D>/run=<R>``."""
        path = Path(self.path)
        if not path.is_absolute():
            path = root / path
        elif not path.exists() and len(path.parts) > 3:
            path = moved if (moved := root.joinpath(*path.parts[-3:])).exists() else path
        return dataclasses.replace(self, path=str(path))


def root_of(folder: str | Path) -> Path:
    """The storage root of a run folder ``<root>/<table>/ds=<D>/run=<R>``."""
    return Path(folder).absolute().parents[2]


@dataclass(frozen=True, kw_only=True)
class Quarantine:
    """Rows prepare rejected: in all, per reason, and rows of the items file."""

    total: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    item_rows: int = 0


@dataclass(frozen=True, kw_only=True)
class Dims:
    """The sizes a model was built with."""

    users: int
    items: int
    dim: int


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What every manifest has: the table, its ds and run, the format version, unknown keys."""

    TABLE: ClassVar[str] = ""
    ds: str
    run: str
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self, root: Path | None = None) -> dict[str, Any]:
        """The JSON object written as ``manifest.json``; with ``root``, the runs it names are
        written relative to it (so the root can be moved)."""
        refs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        refs = {k: _relative(v, root) for k, v in refs.items() if isinstance(v, RunRef)}
        out = plain(dataclasses.replace(self, **refs))
        return {**out, "table": self.TABLE, "format_version": FORMAT_VERSION}

    def rooted(self: M, root: Path) -> M:
        """This manifest with every run it names resolved under ``root``."""
        refs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        refs = {k: v.rooted(root) for k, v in refs.items() if isinstance(v, RunRef)}
        return dataclasses.replace(self, **refs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"

    @classmethod
    def from_dict(cls: type[M], data: Any, source: str | Path = "manifest") -> M:
        """A manifest from its JSON object; ``source`` (the file) names it in errors."""
        what = f"{cls.TABLE} manifest"
        if not isinstance(data, dict):
            raise ManifestError(
                f"{source} is not a {what}: it holds a {type(data).__name__}; re-run `recsys "
                f"{storage.producer(cls.TABLE)}`"
            )
        version = data.get("format_version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ManifestError(
                f"{source} has manifest format version {version!r}, newer than the "
                f"{FORMAT_VERSION} this recsys reads; upgrade recsys"
            )
        table = data.get("table", cls.TABLE)
        if table != cls.TABLE:
            raise ManifestError(f"{source} is a {table} manifest, not a {what}")
        what = f"{what}; re-run `recsys {storage.producer(cls.TABLE)}`"
        return build(cls, cls.upgrade(data), source, what, skip=("table", "format_version"))

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` as this version names its keys (only the model manifest renamed any)."""
        return data

    @classmethod
    def from_json(cls: type[M], text: str, source: str | Path = "manifest") -> M:
        try:
            data = json.loads(text)
        except ValueError:
            raise ManifestError(
                f"{source} is not valid JSON; re-run the step that wrote it"
            ) from None
        return cls.from_dict(data, source)

    @classmethod
    def read(cls: type[M], folder: str | Path) -> M:
        """A complete run folder's manifest, the runs it names resolved under its root."""
        manifest = cls.from_dict(storage.read_manifest(folder), Path(folder) / storage.MANIFEST)
        return manifest.rooted(root_of(folder))


@dataclass(frozen=True, kw_only=True)
class PreparedManifest(Manifest):
    """``prepared/``: what prepare read, kept, rejected and split."""

    TABLE: ClassVar[str] = "prepared"
    n_users: int
    n_items: int
    counts: dict[str, int]  # rows per split
    format: str = ""
    input: list[str] = field(default_factory=list)
    input_fingerprint: str = ""
    # name -> bytes of every data file of ratings/, users/, items/ (recsys.integrity); empty in
    # manifests written before it existed, whose row counts alone are checked. Also seen/ (each
    # user's items, recsys.prepare.seen) in runs prepared since it exists.
    files: dict[str, dict[str, int]] = field(default_factory=dict)
    implicit: bool = False  # no rating column: every row is a choice (rating 1)
    has_timestamps: bool = True
    rows_read: int = 0
    rows_valid: int = 0
    quarantine: Quarantine = field(default_factory=Quarantine)
    duplicates_removed: int = 0
    kcore_removed: int = 0
    titles_redecoded_latin1: int = 0
    rating_scale: list[float] | None = None  # [lo, hi] the input's format allows
    rating_min: float | None = None
    rating_max: float | None = None
    global_mean: float | None = None  # of the train split
    user_id_type: str = "int64"
    item_id_type: str = "int64"
    split: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    synthetic: bool = False  # the input was written by the synthetic generator

    def count(self, split: str) -> int:
        """Rows of one split (0 for a split it does not have)."""
        return int(self.counts.get(split, 0))

    @property
    def rows(self) -> int:
        return int(sum(self.counts.values()))

    @property
    def has_seen(self) -> bool:
        """Whether prepare wrote ``seen/`` (older runs did not: readers group ``ratings/``)."""
        return bool(self.files.get("seen"))


# Keys of the model manifest's payloads renamed since manifests were written, per payload:
# {"train": {old key: new key}}. Empty: nothing was renamed yet; add a line when a field is.
RENAMED: dict[str, dict[str, str]] = {"train": {}, "training": {}}


def upgrade_model(data: dict[str, Any]) -> dict[str, Any]:
    """A model manifest's object as this version names it: the one conversion of older ones.

    Renamed keys (``RENAMED``) move to their new names; settings of ``train`` that
    :class:`~recsys.config.TrainConfig` no longer has are dropped with a log line; keys missing
    from a payload take the dataclass defaults when it is built.
    """
    out = {k: dict(v) if k in RENAMED and isinstance(v, dict) else v for k, v in data.items()}
    for payload, renamed in RENAMED.items():
        for old, new in renamed.items():
            if isinstance(out.get(payload), dict) and old in out[payload]:
                out[payload].setdefault(new, out[payload].pop(old))
    if isinstance(out.get("train"), dict):
        known = {f.name for f in dataclasses.fields(TrainConfig)}
        if dropped := sorted(set(out["train"]) - known):
            log.info("model manifest: dropped settings this recsys does not know: %s", dropped)
            out["train"] = {k: v for k, v in out["train"].items() if k in known}
    return out


@dataclass(frozen=True, kw_only=True)
class ModelManifest(Manifest):
    """``models/``: a trained model, where its data came from, and how it did."""

    TABLE: ClassVar[str] = "models"
    model_version: str  # <family>-<ds>-<run>
    prepared: RunRef
    family: str = ""
    objective: str = ""  # ranking or rating
    dims: Dims | None = None
    side_features: int = 0
    rating_range: list[float] | None = None
    train: TrainConfig = field(default_factory=TrainConfig)  # the resolved settings
    training: TrainingRecord = field(default_factory=TrainingRecord)
    refit_of: RunRef | None = None  # the evaluated model a refit re-trains
    metrics: Metrics = field(default_factory=Metrics)  # as metrics.json
    versions: dict[str, str] = field(default_factory=dict)
    # sha256 of model.keras and arrays.npz (recsys.integrity); empty in older manifests
    artifacts: dict[str, str] = field(default_factory=dict)

    upgrade = staticmethod(upgrade_model)

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights were kept (what a full refit runs for)."""
        return self.training.best_epoch

    @property
    def trained_on(self) -> list[str]:
        """The splits whose rows the model was trained on."""
        return list(self.training.trained_on)

    @property
    def warm_source(self) -> Path | None:
        """The model run it started from, or None for a cold start."""
        source = self.training.warm_start.source
        return Path(source) if source else None

    def test_metric(self, key: str) -> float | None:
        return self.metrics.test_metric(key)

    def baseline_metric(self, baseline: str, key: str) -> float:
        return self.metrics.baseline_metric(baseline, key)


@dataclass(frozen=True, kw_only=True)
class RecommendationsManifest(Manifest):
    """``recommendations/``: a scored top-N table (live only once publish moved ``_LATEST``)."""

    TABLE: ClassVar[str] = "recommendations"
    top_n: int  # rows a user (fewer only when the user has fewer candidates)
    serve_extra: int = 0  # of those, kept beyond the list shown, for read-time filters
    model: RunRef
    model_version: str
    prepared: RunRef
    rows: int = 0
    rows_by_source: dict[str, int] = field(default_factory=dict)
    excluded_items: int = 0  # items below min_item_ratings: nobody gets them
    min_item_ratings: int = 0
    seconds: float = 0.0
    synthetic: bool = False  # scored from synthetic data (its prepared run says so)
    empty_lists: int = 0  # users without an unseen candidate (they rated every item)


@dataclass(frozen=True, kw_only=True)
class SimilarItemsManifest(Manifest):
    """``similar_items/``: each item's nearest items by the model's item vectors."""

    TABLE: ClassVar[str] = "similar_items"
    top_n: int
    model: RunRef
    model_version: str
    prepared: RunRef
    similarity: str = "cosine"
    vectors: str = ""
    rows: int = 0
    excluded_items: int = 0
    min_item_ratings: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class GateManifest(Manifest):
    """``gates/``: whether a model may replace the published one, and why."""

    TABLE: ClassVar[str] = "gates"
    passed: bool
    reason: str
    model: RunRef
    model_version: str
    k: int = 10
    min_lift: float = 0.0
    tolerance: float = 0.0
    checks: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BaselinesManifest(Manifest):
    """``baselines/``: the baselines' test figures on one prepared run, for the settings that
    made them (``settings``), kept so that every model trained on the run reuses them."""

    TABLE: ClassVar[str] = "baselines"
    prepared: RunRef
    settings: dict[str, Any]
    baselines: dict[str, Any]


MANIFESTS: dict[str, type[Manifest]] = {
    m.TABLE: m
    for m in (
        PreparedManifest,
        ModelManifest,
        RecommendationsManifest,
        SimilarItemsManifest,
        GateManifest,
        BaselinesManifest,
    )
}


def links(folder: str | Path) -> list[Path]:
    """Run folders a run was made from (its model, prepared data, the model a refit refits),
    whatever its table; what retention must keep alongside it."""
    data = storage.read_manifest(folder)
    if not isinstance(data, dict):
        raise ManifestError(
            f"{Path(folder) / storage.MANIFEST} holds a JSON {type(data).__name__}, not a "
            "manifest; re-run the step that wrote it"
        )
    out = []
    for key in ("model", "prepared", "refit_of"):  # the RunRef fields of every manifest
        ref = data.get(key)
        if isinstance(ref, dict) and isinstance(ref.get("path"), str) and ref["path"]:
            out.append(RunRef(path=ref["path"]).rooted(root_of(folder)).folder)
    return out


def _relative(value: Any, root: Path | None) -> Any:
    """A ``RunRef`` under ``root`` as written: its path relative to the root."""
    if isinstance(value, RunRef) and root is not None:
        path, base = Path(value.path).absolute(), Path(root).absolute()
        if path.is_relative_to(base):
            return dataclasses.replace(value, path=str(path.relative_to(base)))
    return value
