"""The contracts between the steps: one frozen dataclass per table's ``manifest.json``.

Each step writes its run's manifest last (:func:`recsys.storage.commit`) and the next step reads
it back here, typed: nothing else reads a manifest by string key. A manifest carries
``format_version``; one without it was written before versions existed and reads as version 1.
A manifest of a newer version, or of the wrong shape, fails in one sentence naming the file.
Keys this version does not know are kept (``extra``) and written back unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from recsys import storage
from recsys.errors import RecsysError

FORMAT_VERSION = 1

M = TypeVar("M", bound="Manifest")


class ManifestError(RecsysError):
    """A manifest that is not what its table's contract says (missing key, wrong type, newer)."""


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

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as ``manifest.json``."""
        out = {"table": self.TABLE, "format_version": FORMAT_VERSION}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = _plain(getattr(self, f.name))
        return {**self.extra, **out}

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
        return _build(cls, data, source, f"{what}; re-run `recsys {storage.producer(cls.TABLE)}`")

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
        """The manifest of a complete run folder."""
        return cls.from_dict(storage.read_manifest(folder), Path(folder) / storage.MANIFEST)


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
    train: dict[str, Any] = field(default_factory=dict)  # the resolved TrainConfig
    training: dict[str, Any] = field(default_factory=dict)  # what fit() measured
    refit_of: RunRef | None = None  # the evaluated model a refit re-trains
    metrics: dict[str, Any] = field(default_factory=dict)  # as metrics.json
    versions: dict[str, str] = field(default_factory=dict)
    # sha256 of model.keras and arrays.npz (recsys.integrity); empty in older manifests
    artifacts: dict[str, str] = field(default_factory=dict)

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights were kept (what a full refit runs for)."""
        return self.training.get("best_epoch")

    @property
    def trained_on(self) -> list[str]:
        """The splits whose rows the model was trained on."""
        return list(self.training.get("trained_on", ["train"]))

    @property
    def warm_source(self) -> Path | None:
        """The model run it started from, or None for a cold start."""
        source = (self.training.get("warm_start") or {}).get("from")
        return Path(source) if source else None

    def test_metric(self, key: str) -> float | None:
        """A test metric (``ndcg@10``), None when there is none."""
        value = self.metrics.get("test", {}).get(key)
        return None if value is None else float(value)

    def baseline_metric(self, baseline: str, key: str) -> float:
        return float(self.metrics["baselines"][baseline][key])


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


MANIFESTS: dict[str, type[Manifest]] = {
    m.TABLE: m
    for m in (
        PreparedManifest,
        ModelManifest,
        RecommendationsManifest,
        SimilarItemsManifest,
        GateManifest,
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
    for key in ("model", "prepared", "refit_of"):
        ref = data.get(key)
        if isinstance(ref, dict) and ref.get("path"):
            out.append(Path(ref["path"]))
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return list(value)
    return value


def _build(cls: type, data: dict[str, Any], source: str | Path, what: str, prefix: str = "") -> Any:
    """``cls(**data)`` with every field's type checked and nested dataclasses built."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "extra":
            continue
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ManifestError(
                    f"{source} has no {prefix + f.name!r}: it is not a complete {what}"
                )
            continue
        kwargs[f.name] = _value(hints[f.name], data[f.name], prefix + f.name, source, what)
    if "extra" in {f.name for f in dataclasses.fields(cls)}:
        skip = names | {"table", "format_version"}
        kwargs["extra"] = {k: v for k, v in data.items() if k not in skip}
    return cls(**kwargs)


def _value(hint: Any, value: Any, name: str, source: str | Path, what: str) -> Any:
    """``value`` as ``hint`` says (nested dataclasses built), or a ManifestError."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if option is type(None):
            continue
        if dataclasses.is_dataclass(option) and isinstance(value, dict):
            return _build(option, value, source, what, f"{name}.")
        base = typing.get_origin(option) or option
        if base is Any:
            return value
        if base is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value) if not (isinstance(value, float) and math.isnan(value)) else value
        if base is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if base in (str, bool) and isinstance(value, base):
            return value
        if base in (dict, list) and isinstance(value, base):
            return _items(option, value, name, source, what)
    raise ManifestError(
        f"{source} has {name} = {value!r}, which is not {_name(hint)}: it is not a valid {what}"
    )


def _items(hint: Any, value: Any, name: str, source: str | Path, what: str) -> Any:
    """A dict's values or a list's elements checked against ``hint``'s arguments
    (``dict[str, int]``, ``list[float]``); bare ``dict``/``list`` hints take any."""
    args = typing.get_args(hint)
    if not args:
        return value
    if isinstance(value, dict):
        return {k: _value(args[1], v, f"{name}.{k}", source, what) for k, v in value.items()}
    return [_value(args[0], v, f"{name}[{i}]", source, what) for i, v in enumerate(value)]


def _name(hint: Any) -> str:
    names = {int: "an integer", float: "a number", str: "text", bool: "true or false"}
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    parts = []
    for option in options:
        base = typing.get_origin(option) or option
        parts.append(
            names.get(base)
            or {dict: "an object", list: "a list", type(None): "null"}.get(base)
            or f"a {getattr(base, '__name__', base)} object"
        )
    return " or ".join(parts)
