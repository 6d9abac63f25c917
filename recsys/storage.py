"""The storage layout every step shares: immutable runs, staging names, ``_LATEST`` pointers.

Each step writes ``<root>/<table>/ds=<ds>/run=<run>/``. It builds the folder under a staging name
beginning with ``_`` (Spark and pyarrow ignore such names), renames it into place, writes
``manifest.json`` last, and only then moves the pointers ``<table>/ds=<ds>/_LATEST`` and
``<table>/_LATEST`` (small JSON files replaced by write-then-rename). Readers go through
:func:`resolve` / :func:`latest`, never by listing folders, so a killed step leaves only debris that
nobody reads, and a re-run of the same ``ds`` is simply a new run. A table's ``_LATEST`` only moves
forward in ``ds``: a backfill of an older date moves its ``ds=`` pointer, not the table's.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.errors import RecsysError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LATEST = "_LATEST"
TABLES = ("prepared", "models", "recommendations", "similar_items", "gates")


def today_utc() -> str:
    """Today's date in UTC as YYYY-MM-DD (the command line's default ``ds``)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")


def check_ds(ds: str) -> str:
    """Validate a run date, strictly YYYY-MM-DD (one spelling per day, so one ``ds=`` folder);
    raise a one-sentence error naming the option."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", ds):
            raise ValueError(ds)
        dt.date.fromisoformat(ds)
    except (TypeError, ValueError):
        raise RecsysError(f"--ds must be a date as YYYY-MM-DD, got {ds!r}") from None
    return ds


def new_run_id() -> str:
    """A UTC timestamp run id for command-line runs (sortable, path-safe, unique)."""
    now = dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"Z-{uuid.uuid4().hex[:6]}"


def safe_run_id(run: str) -> str:
    """Make an external run id path-safe (Airflow's ``scheduled__2026-11-23T00:00:00+00:00``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", run).strip("_.")
    if not cleaned:
        raise RecsysError(f"run id {run!r} has no usable characters")
    return cleaned


def _is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file://")


def local_root(root: str) -> Path:
    """The root as an absolute path: manifests and pointers name runs by absolute path, so a
    reader in another working directory (a task, a cron job) finds the same folders."""
    return Path(root[len("file://") :] if root.startswith("file://") else root).absolute()


@dataclass(frozen=True)
class RunPaths:
    """Where one run of one table lives."""

    root: str
    table: str
    ds: str
    run: str

    @property
    def table_dir(self) -> Path:
        return local_root(self.root) / self.table

    @property
    def ds_dir(self) -> Path:
        return self.table_dir / f"ds={self.ds}"

    @property
    def final(self) -> Path:
        return self.ds_dir / f"run={self.run}"

    @property
    def staging(self) -> Path:
        return self.ds_dir / f"_staging-run={self.run}"


def new_run(root: str, table: str, ds: str, run: str | None = None) -> RunPaths:
    """Allocate a run folder (staging created); refuses to reuse the id of a complete run.

    A killed attempt of the same id (an orchestrator's retry reuses it) leaves a staging folder
    or a run folder without manifest; both are incomplete, nobody reads them, and they go.
    """
    if not _is_local(root):
        raise RecsysError(
            f"root {root!r}: only local paths are supported by this version's commit protocol"
        )
    paths = RunPaths(root, table, check_ds(ds), safe_run_id(run) if run else new_run_id())
    if paths.final.exists():
        if (paths.final / MANIFEST).is_file():
            raise RecsysError(
                f"{paths.final} already exists; runs are immutable, so pass a new --run id"
            )
        # Renamed into place but killed before its manifest: incomplete, read by nobody.
        shutil.rmtree(paths.final)
    if paths.staging.exists():
        # Debris of a killed attempt of this run id (an orchestrator's retry reuses the id):
        # nobody reads it, and Spark refuses to write into a table folder that already exists.
        shutil.rmtree(paths.staging)
    paths.staging.mkdir(parents=True)
    return paths


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def write_pointer(path: Path, ds: str, run: str, folder: Path) -> None:
    """Atomically replace a ``_LATEST`` pointer file with one naming ``folder``."""
    _write_json_atomic(path, _pointer(ds, run, folder))


def commit(
    paths: RunPaths,
    manifest: Any,
    move_table_latest: bool = True,
    backwards: bool = False,
) -> Path:
    """Publish a finished staging folder: rename, write the manifest last, move the pointers.

    ``manifest`` is a :mod:`recsys.manifests` dataclass (or a plain dict). ``move_table_latest=
    False`` leaves the table's ``_LATEST`` alone (recommendations: only ``publish`` moves it,
    after validation); the ds pointer always names the new run.
    """
    data = manifest.to_dict() if hasattr(manifest, "to_dict") else manifest
    os.replace(paths.staging, paths.final)
    _write_json_atomic(paths.final / MANIFEST, data)
    _write_json_atomic(paths.ds_dir / LATEST, _pointer(paths.ds, paths.run, paths.final))
    if move_table_latest:
        advance_latest(paths.table_dir, paths.ds, paths.run, paths.final, backwards)
    return paths.final


def _pointer(ds: str, run: str, folder: Path) -> dict[str, str]:
    return {"ds": ds, "run": run, "path": str(folder)}


def advance_latest(
    table_dir: Path, ds: str, run: str, folder: Path, backwards: bool = False
) -> bool:
    """Point ``<table>/_LATEST`` at a run unless it names a newer ``ds`` (a backfill).

    ``backwards=True`` moves it anyway (``--set move_latest_backwards=true``). The compare and
    replace hold a lock on the table, so two commits cannot interleave. Returns whether it moved.
    """
    with open(table_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = read_pointer(table_dir / LATEST)
        if current and str(current.get("ds", "")) > ds and not backwards:
            log.info(
                "%s/_LATEST stays at ds=%s: ds=%s is older (a backfill; "
                "move_latest_backwards=true moves it)",
                table_dir.name,
                current["ds"],
                ds,
            )
            return False
        _write_json_atomic(table_dir / LATEST, _pointer(ds, run, folder))
        return True


def read_pointer(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise RecsysError(
            f"pointer file {path} is unreadable; re-run the step that writes it"
        ) from None


def resolve(root: str, table: str, ds: str | None = None, run: str | None = None) -> Path:
    """Folder of a complete run: the given one, the latest of a ``ds``, or the latest overall.

    Raises ``RecsysError`` when no complete run (one with a manifest) matches.
    """
    table_dir = local_root(root) / table
    if run:
        if not ds:
            raise RecsysError("a run id needs its --ds too")
        folder = table_dir / f"ds={check_ds(ds)}" / f"run={safe_run_id(run)}"
    else:
        pointer_file = table_dir / (f"ds={check_ds(ds)}" if ds else "") / LATEST
        pointer = read_pointer(pointer_file)
        if pointer is None:
            what = f"for ds={ds} " if ds else ""
            raise RecsysError(
                f"no complete {table} run {what}under {table_dir}; run `recsys "
                f"{producer(table)}` first (or pass the right --root)"
            )
        folder = table_dir / f"ds={pointer['ds']}" / f"run={pointer['run']}"
    if not (folder / MANIFEST).is_file():
        raise RecsysError(
            f"{folder} is not a complete {table} run (no {MANIFEST}); re-run `recsys "
            f"{producer(table)}`"
        )
    return folder


def latest(root: str, table: str) -> Path:
    """Folder of the run the table's ``_LATEST`` names."""
    return resolve(root, table)


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The raw JSON of a complete run folder's manifest (steps read it typed, through
    :mod:`recsys.manifests`)."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RecsysError(f"{path} is missing: {folder} is not a complete run") from None
    except ValueError:
        raise RecsysError(f"{path} is not valid JSON; re-run the step that wrote it") from None


def producer(table: str) -> str:
    """The ``recsys`` command that writes ``table``'s runs (for error messages)."""
    return {
        "prepared": "prepare",
        "models": "train",
        "recommendations": "score",
        "gates": "gate",
        "similar_items": "score --similar-items N",
    }.get(table, table)
