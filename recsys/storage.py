"""The storage layout every step shares: immutable runs, staging names, ``_LATEST`` pointers.

Each step writes ``<root>/<table>/ds=<ds>/run=<run>/``. It builds the folder under a staging name
beginning with ``_`` (Spark and pyarrow ignore such names), renames it into place, writes
``manifest.json`` last, and only then moves the pointers ``<table>/ds=<ds>/_LATEST`` and
``<table>/_LATEST`` (small JSON files replaced by write-then-rename). Readers go through
:func:`resolve` / :func:`latest`, never by listing folders, so a killed step leaves only debris that
nobody reads, and a re-run of the same ``ds`` is simply a new run. A table's ``_LATEST`` only moves
forward in ``ds``: a backfill of an older date moves its ``ds=`` pointer, not the table's.
Every command checks its root (:func:`check_root`) before Spark or TensorFlow starts; an ``OSError``
of a write here (a full disk, a read-only root) becomes one sentence naming the path, and a failed
step's staging folders go (:func:`discard_staging`), so a refused step leaves nothing behind.
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

from recsys.errors import RecsysError, os_error_message

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LATEST = "_LATEST"
TABLES = ("prepared", "models", "recommendations", "similar_items", "gates")
_STAGING: set[Path] = set()  # staging folders of this process's runs not yet committed


def today_utc() -> str:
    """Today's date in UTC as YYYY-MM-DD (the command line's default ``ds``)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")


def check_ds(ds: str, option: str = "--ds") -> str:
    """Validate a run date, strictly YYYY-MM-DD (one spelling per day, so one ``ds=`` folder);
    raise a one-sentence error naming the option. Every entry point's dates go through here."""
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", ds):
            raise ValueError(ds)
        dt.date.fromisoformat(ds)
    except (TypeError, ValueError):
        raise RecsysError(f"{option} must be a date as YYYY-MM-DD, got {ds!r}") from None
    return ds


def check_not_ahead(ds: str, option: str, max_days: int) -> str:
    """Refuse a run date more than ``max_days`` after today (UTC): a typo'd year would otherwise
    be a run whose model and table stay newest (and live) for years."""
    ahead = (dt.date.fromisoformat(ds) - dt.date.fromisoformat(today_utc())).days
    if ahead > max_days:
        raise RecsysError(
            f"{option} {ds} is {ahead:,} days after today ({today_utc()}, UTC), more than "
            f"max_days_ahead={max_days}; pass the date you meant, or force it with --set "
            f"max_days_ahead={ahead} (or RECSYS_MAX_DAYS_AHEAD={ahead})"
        )
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


def _make_dir(path: Path) -> None:
    """``mkdir -p``; every folder the protocol creates goes through here."""
    path.mkdir(parents=True, exist_ok=True)


def _write_bytes(path: Path, data: bytes) -> None:
    """Write a small file; every file the protocol writes goes through here."""
    path.write_bytes(data)


def check_root(root: str, tables: tuple[str, ...] = (), write: bool = True) -> Path:
    """Refuse, in one sentence, a root a command cannot use, before any heavy work starts.

    The root must be a local folder (created when missing, with ``write``), writable (a probe
    file is written and removed, so a full disk or a read-only mount shows here), and the
    ``_LATEST`` pointers of ``tables`` must be valid. Returns the root as an absolute path.
    """
    if not _is_local(root):
        raise RecsysError(
            f"root {root!r}: only local paths are supported by this version's commit protocol"
        )
    path = local_root(root)
    if path.exists() and not path.is_dir():
        raise RecsysError(
            f"storage root {path} is a file, not a folder; pass --root (or set RECSYS_ROOT to) a "
            "folder"
        )
    if write:
        probe = path / f".recsys-probe-{uuid.uuid4().hex}"
        try:
            _make_dir(path)
            _write_bytes(probe, b"recsys\n")
            probe.unlink()
        except OSError as exc:
            raise RecsysError(
                f"storage root {path} is not usable: {os_error_message(exc, path)}"
            ) from None
    for table in tables:
        read_pointer(path / table / LATEST)
    return path


def discard_staging() -> list[Path]:
    """Remove the staging folders of this process's runs that were never committed (a step
    that failed); returns them. The command line calls it when a command fails."""
    gone = []
    for folder in sorted(_STAGING):
        shutil.rmtree(folder, ignore_errors=True)
        gone.append(folder)
    _STAGING.clear()
    return gone


def keep_aside(paths: RunPaths, part: str) -> Path:
    """Move ``part`` of a run's staging folder to ``ds=<ds>/_rejected-run=<run>/`` and return its
    new place: what a person must inspect after a refusal (prepare's quarantine) outlives the
    staging folder, and retention removes it with the day's other runs."""
    target = paths.ds_dir / f"_rejected-run={paths.run}"
    try:
        _make_dir(target)
        os.replace(paths.staging / part, target / part)
    except OSError as exc:
        raise RecsysError(os_error_message(exc, target)) from None
    return target / part


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
    try:
        _make_dir(paths.staging)
    except OSError as exc:
        raise RecsysError(os_error_message(exc, paths.staging)) from None
    _STAGING.add(paths.staging)
    return paths


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write-then-rename; an OSError (full disk, read-only) is one sentence naming ``path``, and
    the file it replaces stays as it was."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_bytes(tmp, (json.dumps(data, indent=2, sort_keys=True, default=str) + "\n").encode())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecsysError(os_error_message(exc, path)) from None


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
    root = paths.table_dir.parent.absolute()
    data = manifest.to_dict(root) if hasattr(manifest, "to_dict") else manifest
    if move_table_latest:
        read_pointer(paths.table_dir / LATEST)  # a damaged pointer refuses before the rename
    try:
        os.replace(paths.staging, paths.final)
    except OSError as exc:
        raise RecsysError(os_error_message(exc, paths.final)) from None
    _STAGING.discard(paths.staging)
    try:
        _write_json_atomic(paths.final / MANIFEST, data)
    except RecsysError:
        shutil.rmtree(paths.final, ignore_errors=True)  # no manifest: incomplete, read by nobody
        raise
    _write_json_atomic(paths.ds_dir / LATEST, _pointer(paths.ds, paths.run, paths.final))
    if move_table_latest:
        advance_latest(paths.table_dir, paths.ds, paths.run, paths.final, backwards)
    return paths.final


def _pointer(ds: str, run: str, folder: Path) -> dict[str, str]:
    """A pointer's JSON; its path is ``<table>/ds=<D>/run=<R>``, relative to the root, so the
    root can be moved (readers go by ds and run)."""
    folder = Path(folder)
    return {"ds": ds, "run": run, "path": str(Path(*folder.parts[-3:]))}


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
    """A ``_LATEST`` pointer (None when there is none), or one sentence saying what is wrong
    with it and what to do: a damaged pointer is never guessed around."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecsysError(f"pointer file {path} is unreadable: {os_error_message(exc)}") from None
    try:
        data = json.loads(text)
    except ValueError:
        data = ValueError
    problem = _pointer_problem(data)
    if problem:
        table = path.parent.parent.name if path.parent.name.startswith("ds=") else path.parent.name
        writer = "publish" if table == "recommendations" else producer(table)
        raise RecsysError(
            f"pointer file {path} is damaged ({problem}); delete it and re-run `recsys {writer}` "
            "to write it again"
        )
    return data


def _pointer_problem(data: Any) -> str:
    """What makes ``data`` not a pointer (empty: it is one)."""
    if data is ValueError:
        return "not valid JSON"
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object with ds, run and path"
    for key in ("ds", "run"):
        if not isinstance(data.get(key), str):
            return f"no text {key!r}"
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", data["ds"]):
        return f"ds {data['ds']!r} is not a date as YYYY-MM-DD"
    if not data["run"] or safe_run_id(data["run"]) != data["run"]:
        return f"run {data['run']!r} is not a run id"
    return ""


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
