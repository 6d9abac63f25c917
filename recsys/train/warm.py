"""Warm start: initialise a model from an earlier one instead of from random rows.

The nightly run starts from the model served last night: the one behind
``recommendations/_LATEST`` (``models/_LATEST`` when nothing is published yet), or, when that is a
refit, its evaluated twin, as the gate does: a refit trained on its night's test rows, which under
leave-last are mostly tonight's test rows too, so starting from it would leak them into tonight's
evaluation. A continue refit starts from the evaluated model it refits (same prepared run).

Prepare renumbers users and items every night, so per-user and per-item tables (embeddings,
biases; ``optim.is_table``) are copied row by row through the original ids of the two prepared
runs; users and items new tonight keep their fresh random rows. Dense weights (MLP layers, the
genre table) are copied when their shapes match (the genre table also needs the same genre list).
Old weights are read from ``model.keras``: ``arrays.npz`` holds item vectors with the genre
part folded in, not the tables training needs. A source that is missing, unreadable, or of another
family, dimension, objective or split gives one log line and a cold start, never a failed night.

The step decides where a run starts (``origin``: cold, last night's model, or the evaluated model
a refit continues) before the loop exists; the loop loads it (``load_warm_start``, TensorFlow).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recsys import integrity, storage
from recsys import schema as S
from recsys.config import TrainConfig
from recsys.errors import RecsysError
from recsys.lineage import original_ids, published_model
from recsys.manifests import ModelManifest, PreparedManifest
from recsys.payloads import WarmRecord
from recsys.train.optim import DENSE_NAMES, is_table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmStart:
    """The old weights to load (``None``: cold start, ``reason`` says why) and the row maps.

    ``user_rows[u]`` is the old row of tonight's user ``u`` (-1: new tonight); ``item_rows``
    likewise. ``weights`` are keyed by ``weight_keys``.
    """

    reason: str
    source: Path | None = None
    weights: dict[str, np.ndarray] | None = None
    user_rows: np.ndarray | None = None
    item_rows: np.ndarray | None = None
    same_genres: bool = True
    version: str = ""

    def apply(self, model: Any) -> WarmRecord:
        """Set ``model``'s variables from the old weights; returns the manifest's record.

        Call after ``build_model`` (inside the strategy scope) and before training.
        """
        if self.weights is None:
            return WarmRecord(source=None, reason=self.reason)
        copied, kept = [], []
        for key, var in zip(weight_keys(model.weights), model.weights, strict=True):
            old = self.weights.get(key)
            name = var.name.split("/")[-1]
            if name in DENSE_NAMES:  # item_features: data, tonight's genres of tonight's items
                continue
            if old is None:
                kept.append(key)
                continue
            if is_table(var):
                rows = self.user_rows if name.startswith("user_") else self.item_rows
                if old.shape[1:] != tuple(var.shape[1:]):
                    kept.append(key)
                    continue
                value = np.array(var)  # (n_rows, width): fresh rows of tonight's new ids
                hit = rows >= 0
                value[hit] = old[rows[hit]]
            elif old.shape == tuple(var.shape) and (self.same_genres or name != "side_emb"):
                value = old
            else:
                kept.append(key)
                continue
            var.assign(value)
            copied.append(key)
        return WarmRecord(
            source=str(self.source),
            model_version=self.version,
            users=int(np.count_nonzero(self.user_rows >= 0)),
            items=int(np.count_nonzero(self.item_rows >= 0)),
            copied=copied,
            kept_fresh=kept,
        )


def weight_keys(weights: list[Any]) -> list[str]:
    """Names of a model's variables that two builds of it share.

    Keras numbers instances (``biased_mf_3/user_emb``, ``mlp/dense_5/kernel``), so the model's own
    name is dropped, the numbers are stripped and repeated names get their order:
    ``mlp/dense/kernel#0``, ``mlp/dense/kernel#1``.
    """
    keys, seen = [], {}
    for var in weights:
        key = "/".join(re.sub(r"_\d+$", "", part) for part in var.path.split("/")[1:])
        seen[key] = seen.get(key, -1) + 1
        keys.append(f"{key}#{seen[key]}")
    return keys


@dataclass(frozen=True)
class Origin:
    """Where a run starts, as the step decided: a model run to copy rows from, or cold.

    ``required``: a refit's start, which must load (an error otherwise, never a silent cold
    start); ``reason``: why a run starts cold.
    """

    source: Path | None = None
    required: bool = False
    reason: str = "train.warm_start is off"


COLD = Origin()


def find_source(root: str) -> Path | None:
    """The model last night served (its evaluated twin if a refit), else ``models/_LATEST``."""
    published = published_model(root)
    if published is not None:
        return published[0]
    try:
        model_dir = storage.latest(root, "models")
    except RecsysError:
        return None
    refit_of = ModelManifest.read(model_dir).refit_of
    return refit_of.folder if refit_of else model_dir


def origin(root: str, tcfg: TrainConfig, source: Path | None = None) -> Origin:
    """Where ``tcfg`` starts: ``source`` (required), else with ``train.warm_start`` the model
    last night served (``find_source``), else cold. A source that cannot be found gives one log
    line and a cold start, never an error."""
    if source is not None:
        return Origin(source, required=True)
    if not tcfg.warm_start:
        return COLD
    try:
        found = find_source(root)
        if found is None:
            raise RecsysError(f"no model was published or trained under {root} yet")
    except (RecsysError, OSError, KeyError, TypeError, ValueError) as exc:
        log.warning("cold start: %s", exc)
        return Origin(reason=str(exc))
    return Origin(found)


def _genres(prepared: Path) -> list[str]:
    items = pq.read_table(prepared / "items", columns=[S.GENRES]).to_pandas()
    return sorted({g for gs in items[S.GENRES] for g in gs})


def _rows(new: Path, old: Path, table: str, idx: str, id_col: str) -> np.ndarray:
    """Old row of each of tonight's rows by original id (-1: not in the old run)."""
    if new.resolve() == old.resolve():  # same prepared run: identical indices
        return np.arange(len(original_ids(new, table, idx, id_col)))
    old_ids = pd.Index(original_ids(old, table, idx, id_col))
    return old_ids.get_indexer(original_ids(new, table, idx, id_col))


def _mismatch(
    old: ModelManifest, old_prep: PreparedManifest, tcfg: TrainConfig, manifest: PreparedManifest
) -> str:
    """Why the old model cannot seed tonight's (empty: it can)."""
    for what, have, want in (
        ("family", old.family, tcfg.model),
        ("objective", old.objective, tcfg.objective),
        ("dim", old.dims.dim if old.dims else None, tcfg.dim),
    ):
        if have != want:
            return f"it is {what} {have}, tonight trains {what} {want}"
    if old_prep.split != manifest.split:
        # Its train rows could be in tonight's held-out rows: the evaluation would be flattered.
        return f"its data was split as {old_prep.split}, tonight's as {manifest.split}"
    if old_prep.ds > manifest.ds:
        return f"its data (ds {old_prep.ds}) is newer than tonight's (ds {manifest.ds})"
    return ""


def load_warm_start(
    tcfg: TrainConfig, prepared: Path, manifest: PreparedManifest, start: Origin
) -> WarmStart:
    """The old weights and row maps of ``start`` (decided by the step, ``origin``).

    A source that will not do gives one log line and a cold start with the reason, never an
    error, unless it is ``required`` (a refit, which must not start cold): then it raises.
    Uses TensorFlow (loads ``model.keras``): call it after the distribution strategy exists.
    """
    source = start.source
    if source is None:
        return WarmStart(start.reason)
    try:
        old = ModelManifest.read(source)
        integrity.check_model(source, old, ("model.keras",))
        old_prepared = old.prepared.folder
        old_manifest = PreparedManifest.read(old_prepared)
        integrity.check_prepared(old_prepared, old_manifest)
        why = _mismatch(old, old_manifest, tcfg, manifest)
        if why:
            raise RecsysError(f"{source} cannot seed tonight's model: {why}")
        weights = _load_weights(source / "model.keras")
        warm = WarmStart(
            reason="",
            source=source,
            weights=weights,
            user_rows=_rows(prepared, old_prepared, "users", S.USER_IDX, S.USER_ID),
            item_rows=_rows(prepared, old_prepared, "items", S.ITEM_IDX, S.ITEM_ID),
            same_genres=_genres(prepared) == _genres(old_prepared),
            version=old.model_version,
        )
    except (RecsysError, OSError, KeyError, TypeError, ValueError) as exc:
        why = f"the manifest of {source} has no {exc}" if isinstance(exc, KeyError) else str(exc)
        if start.required:
            raise RecsysError(f"cannot start from {source}: {why}") from None
        log.warning("cold start: %s", why)
        return WarmStart(why)
    log.info(
        "warm start from %s: %d of %d users and %d of %d items found by id",
        warm.version or source,
        np.count_nonzero(warm.user_rows >= 0),
        len(warm.user_rows),
        np.count_nonzero(warm.item_rows >= 0),
        len(warm.item_rows),
    )
    return warm


def _load_weights(path: Path) -> dict[str, np.ndarray]:
    """Every variable of a saved model by ``weight_keys``; RecsysError when it will not load."""
    import keras

    from recsys.train.models.build import register_all

    register_all()  # Keras finds the saved model's class by its registered name

    if not path.is_file():
        raise RecsysError(f"{path} is missing")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    # A damaged archive surfaces as zipfile, h5py or deserialisation errors of many types; none
    # of them may fail the night.
    except Exception as exc:
        raise RecsysError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
    return {k: np.array(v) for k, v in zip(weight_keys(model.weights), model.weights, strict=True)}
