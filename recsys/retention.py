"""``recsys retention``: delete runs older than N days, never what is in use.

A run folder ``<table>/ds=<D>/run=<R>/`` (and a killed run's ``_staging-run=<R>`` debris) is
deleted when ``D`` is more than ``days`` days before the reference date, unless it is *kept*:

* a table's ``_LATEST`` names it (the published recommendations, the latest model, ...), or
* a kept run needs it: a table names its model and prepared run, a model its prepared run and,
  for a refit, the evaluated model it refits (which tomorrow's gate compares with).

Kept runs are found by following those manifest links from every ``_LATEST`` pointer, so the
published table stays readable and re-evaluable whatever its age. A ``ds=`` folder left without
runs goes too, with its pointer. Old training checkpoints (``models/_checkpoints``) follow the
same cut-off.

Retention never follows a symbolic link (a linked ``ds=`` or run folder is skipped, with a
warning) and deletes only folders whose names it recognises: ``run=<R>``, ``_staging-run=<R>``
and ``_rejected-run=<R>`` in a table, a 16-hex-digit checkpoint folder in ``_checkpoints``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
from pathlib import Path
from typing import Any

from recsys import manifests, storage
from recsys.errors import RecsysError
from recsys.evaluate import kept as kept_figures

log = logging.getLogger(__name__)

RUN_NAME = re.compile(r"(_staging-|_rejected-)?run=[^/]+")  # what a step writes in a ds= folder
CHECKPOINT_NAME = re.compile(r"[0-9a-f]{16}")  # recsys.train.step's checkpoint folders


def _runs(ds_dir: Path, names: re.Pattern) -> list[Path]:
    """The run folders of a ds folder that retention may delete: real folders (no link) with a
    name it recognises; anything else is left, with a warning."""
    runs = []
    for path in sorted(ds_dir.iterdir()):
        if path.is_symlink() or not path.is_dir() or not names.fullmatch(path.name):
            if path.is_dir() or path.is_symlink():
                log.warning("retention: leaving %s (a link, or not a run folder)", path)
            continue
        runs.append(path)
    return runs


def kept_runs(root: Path) -> set[Path]:
    """Every run a ``_LATEST`` pointer names, and everything those runs depend on."""
    todo: list[Path] = []
    for table in storage.TABLES:
        data = storage.read_pointer(root / table / storage.LATEST)
        if data is not None:
            todo.append(root / table / f"ds={data['ds']}" / f"run={data['run']}")
    kept: set[Path] = set()
    while todo:
        folder = todo.pop().resolve()
        if folder in kept:
            continue
        kept.add(folder)
        if (folder / storage.MANIFEST).is_file():
            todo.extend(manifests.links(folder))
    return kept | kept_figures.in_use(root, kept)


def _repoint(ds_dir: Path) -> None:
    """Point a ds folder's ``_LATEST`` at its newest complete run left, if it named another."""
    pointer = ds_dir / storage.LATEST
    try:
        named = json.loads(pointer.read_text())["run"]
    except (OSError, ValueError, KeyError):
        named = None
    if named and (ds_dir / f"run={named}" / storage.MANIFEST).is_file():
        return
    complete = [p for p in ds_dir.glob("run=*") if (p / storage.MANIFEST).is_file()]
    if not complete:
        pointer.unlink(missing_ok=True)
        return
    newest = max(complete, key=lambda p: (p / storage.MANIFEST).stat().st_mtime)
    storage.write_pointer(pointer, ds_dir.name[3:], newest.name[4:], newest)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def apply_retention(
    root: str, days: int, ds: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Delete what is older than ``days`` before ``ds`` (default today) and not kept."""
    if days < 0:
        raise RecsysError(f"retention days must be at least 0, got {days}")
    ref = dt.date.fromisoformat(storage.check_ds(ds or storage.today_utc()))
    storage.check_root(root, storage.TABLES)
    cutoff = ref - dt.timedelta(days=days)
    base = storage.local_root(root)
    kept = kept_runs(base)
    deleted: list[str] = []
    kept_old: list[str] = []
    freed = 0
    tables = [base / t for t in (*storage.TABLES, kept_figures.TABLE, "models/_checkpoints")]
    for table in tables:
        names = CHECKPOINT_NAME if table.name == "_checkpoints" else RUN_NAME
        for ds_dir in sorted(table.glob("ds=*")):
            if ds_dir.is_symlink() or not ds_dir.is_dir():
                log.warning("retention: leaving %s (a link, or not a folder)", ds_dir)
                continue
            try:
                day = dt.date.fromisoformat(ds_dir.name[3:])
            except ValueError:
                log.warning("retention: skipping %s (not a ds=YYYY-MM-DD folder)", ds_dir)
                continue
            if day >= cutoff:
                continue
            runs = _runs(ds_dir, names)
            # What it does not recognise stays, and so does the ds folder that holds it.
            remaining = sum(p.name != storage.LATEST and p not in runs for p in ds_dir.iterdir())
            for run_dir in runs:
                if run_dir.resolve() in kept:
                    kept_old.append(str(run_dir))
                    remaining += 1
                    continue
                freed += _size(run_dir)
                deleted.append(str(run_dir))
                if not dry_run:
                    shutil.rmtree(run_dir)
            if dry_run:
                continue
            if not remaining:
                shutil.rmtree(ds_dir, ignore_errors=True)  # its _LATEST named a deleted run
            else:
                _repoint(ds_dir)
    verb = "would be deleted (dry run)" if dry_run else "deleted"
    log.info("retention: %d runs %s, %d old runs kept in use", len(deleted), verb, len(kept_old))
    return {
        "cutoff": cutoff.isoformat(),
        "deleted": deleted,
        "kept_in_use": kept_old,
        "bytes_freed": freed,
        "dry_run": dry_run,
    }
