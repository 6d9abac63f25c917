"""The baselines' figures kept with the prepared run they were measured on.

The baselines (popularity, the biased baseline, EASE) depend on the prepared run and the
evaluation settings, never on the model, yet EASE alone costs tens of seconds at the ml-1m shape.
So they are measured once per prepared run and settings, and kept as a run of the ``baselines/``
table beside it: ``baselines/ds=<prepared ds>/run=<prepared run>.<key>/``, where ``key`` is a
hash of the settings (``k``, the user sample, EASE's grid and limits). It is written through
:mod:`recsys.storage` (staging, then commit; the table's ``_LATEST`` never moves), so a reader
sees a complete run or none. Every later model trained on the same prepared run with the same
settings reads the figures back instead of refitting. The cache is an optimisation: an unreadable
or mismatching kept run is measured again, and a failed write only logs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys import manifests, storage
from recsys.errors import RecsysError
from recsys.evaluate.baselines import EASE_LAMBDA, EASE_LAMBDAS, EASE_MAX_ITEMS
from recsys.manifests import BaselinesManifest, PreparedManifest, RunRef

log = logging.getLogger(__name__)

TABLE = "baselines"
# Raised when the baselines' figures change for the same settings (a fix in a metric or a
# baseline), so that runs kept by an older recsys are measured again.
FIGURES_VERSION = 2  # 2: recency-weighted EASE joined the baselines


def baseline_settings(k: int, max_users: int, seed: int) -> dict[str, Any]:
    """Everything besides the prepared run that the baselines' figures depend on."""
    return {
        "figures_version": FIGURES_VERSION,
        "k": k,
        "max_users": max_users,
        "seed": seed,
        "ease_lambda": EASE_LAMBDA,
        "ease_lambdas": list(EASE_LAMBDAS),
        "ease_max_items": EASE_MAX_ITEMS,
    }


def kept_run(prepared: Path, manifest: PreparedManifest, settings: dict[str, Any]):
    """Where the figures of ``prepared`` for ``settings`` are kept (``RunPaths``), or None for a
    prepared folder outside a storage root (``<root>/prepared/ds=<ds>/run=<run>``)."""
    prepared = Path(prepared).absolute()
    if prepared.parent.parent.name != "prepared" or prepared.name != f"run={manifest.run}":
        return None
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return storage.RunPaths(str(prepared.parents[2]), TABLE, manifest.ds, f"{manifest.run}.{key}")


def _read(paths: storage.RunPaths, prepared: Path, settings: dict[str, Any]) -> dict | None:
    """The kept figures, or None when there are none (or they do not match, said in a log)."""
    if not (paths.final / storage.MANIFEST).is_file():
        return None
    try:
        kept = BaselinesManifest.read(paths.final)
    except (OSError, RecsysError) as exc:
        log.warning("baselines kept in %s are unreadable (%s); measuring again", paths.final, exc)
        return None
    if kept.settings != settings or kept.prepared.folder != Path(prepared).absolute():
        log.warning("baselines kept in %s are of other settings; measuring again", paths.final)
        return None
    return kept.baselines


def _write(paths: storage.RunPaths, manifest: PreparedManifest, prepared: Path, settings, figures):
    """Commit the figures as a run of ``baselines/``; a failure (another writer was first, a full
    disk) only logs, since the figures are already in hand."""
    try:
        staged = storage.new_run(paths.root, TABLE, paths.ds, paths.run)
        kept = BaselinesManifest(
            ds=paths.ds,
            run=staged.run,
            prepared=RunRef.of(manifest, Path(prepared).absolute()),
            settings=settings,
            baselines=figures,
        )
        storage.commit(staged, kept, move_table_latest=False)
    except RecsysError as exc:
        log.warning("the baselines' figures were not kept (%s); the next model measures them", exc)


def kept_baselines(
    prepared: Path,
    manifest: PreparedManifest,
    settings: dict[str, Any],
    measure: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """The baselines' figures on ``prepared`` for ``settings``: the kept ones, else ``measure()``
    kept for the next model."""
    paths = kept_run(prepared, manifest, settings)
    if paths is None:
        return measure()
    found = _read(paths, prepared, settings)
    if found is not None:
        log.info("baselines: the figures kept in %s", paths.final)
        return found
    figures = measure()
    _write(paths, manifest, prepared, settings, figures)
    return figures


def in_use(root: Path, kept: set[Path]) -> set[Path]:
    """The ``baselines/`` runs of the prepared runs in ``kept`` (resolved run folders).

    Nothing links to a kept run of figures, so retention asks here: the figures stay as long as
    their prepared run does, and those of a deleted prepared run go by the usual cut-off.
    """
    out: set[Path] = set()
    for run in Path(root, TABLE).glob("ds=*/run=*"):
        try:
            made_from = {p.resolve() for p in manifests.links(run)}
        except RecsysError:  # a run without a readable manifest is debris: the cut-off decides
            continue
        if made_from & kept:
            out.add(run.resolve())
    return out
