"""Integrity between steps: a step reads only what its producer recorded in the manifest.

Prepare records, in its manifest, the rows of every split and the name and size of every data file
of ``ratings/``, ``users/`` and ``items/`` (a cheap fingerprint: no byte is hashed); train records
the sha256 of ``model.keras`` and ``arrays.npz``. Every step that reads a prepared run or a model
checks them first (:func:`check_prepared`, :func:`check_model`) and refuses a run that lost, gained
or changed a file in one sentence naming the run, the expected and the found figures, before it
allocates a run of its own: nothing is committed. Manifests written before these records existed
lack them; their row counts are still checked, their files are not.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq

from recsys import schema as S
from recsys.errors import RecsysError

PREPARED_PARTS = ("ratings", "users", "items")  # the folders of a prepared run later steps read
MODEL_FILES = ("model.keras", "arrays.npz")  # the artifacts a model run is checked by


class IntegrityError(RecsysError):
    """What a step read differs from what the manifest of its input records."""


def data_files(folder: Path) -> dict[str, int]:
    """Size of every data file under ``folder`` by its relative name; names beginning with ``_``
    or ``.`` (Spark's markers and checksums, staging debris) are not data and are left out."""
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(p.startswith(("_", ".")) for p in rel.parts):
            out[rel.as_posix()] = path.stat().st_size
    return out


def prepared_files(folder: Path) -> dict[str, dict[str, int]]:
    """The fingerprint prepare records: file sizes of ``ratings/``, ``users/``, ``items/``."""
    return {part: data_files(folder / part) for part in PREPARED_PARTS}


def parquet_rows(folder: Path) -> int:
    """Rows of the Parquet files under ``folder``, from their footers alone."""
    rows = 0
    for name in data_files(folder):
        path = folder / name
        try:
            rows += pq.ParquetFile(path).metadata.num_rows
        except Exception as exc:  # truncated or foreign bytes: arrow raises several types
            raise IntegrityError(
                f"{path} is not a readable Parquet file ({type(exc).__name__}); the prepared run "
                f"is damaged: re-run `recsys prepare`"
            ) from None
    return rows


def _describe(files: dict[str, int]) -> str:
    return f"{len(files):,} file(s) of {sum(files.values()):,} bytes"


def check_prepared(folder: Path, manifest) -> None:
    """Refuse a prepared run whose files or row counts differ from its manifest's record.

    Args:
        folder: the prepared run.
        manifest: its ``PreparedManifest``.

    Raises:
        IntegrityError: one sentence naming the run, the expected and the found figures.
    """
    again = f"re-run `recsys prepare` for ds={manifest.ds} (or pass an intact prepared run)"
    for part, expected in (manifest.files or {}).items():
        found = data_files(folder / part)
        if found == expected:
            continue
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        changed = sorted(n for n in set(found) & set(expected) if found[n] != expected[n])
        if missing:
            detail = f"{part}/{missing[0]} is missing"
        elif extra:
            detail = f"{part}/{extra[0]} is not in the manifest"
        else:
            name = changed[0]
            detail = f"{part}/{name} has {found[name]:,} bytes, not {expected[name]:,}"
        raise IntegrityError(
            f"prepared run {folder} does not match its manifest: {part}/ holds "
            f"{_describe(found)}, the manifest records {_describe(expected)} ({detail}); {again}"
        )
    figures = [(f"{split} rows", manifest.count(split), folder / "ratings" / f"split={split}")
               for split in S.SPLITS]  # fmt: skip
    figures += [("users", manifest.n_users, folder / "users")]
    figures += [("items", manifest.n_items, folder / "items")]
    for what, expected, part in figures:
        found = parquet_rows(part)
        if found != expected:
            raise IntegrityError(
                f"prepared run {folder} holds {found:,} {what} but its manifest records "
                f"{expected:,}; {again}"
            )
    check_finite(folder, manifest)


def check_finite(folder: Path, manifest) -> None:
    """Refuse a prepared run whose ratings are not all finite (its rating range and mean, which
    prepare computed from every row, say so): training and evaluation on them only make NaN.

    Raises:
        IntegrityError: one sentence naming the run and the figure.
    """
    for name in ("rating_min", "rating_max", "global_mean"):
        value = getattr(manifest, name)
        if value is not None and not math.isfinite(value):
            raise IntegrityError(
                f"prepared run {folder} holds non-finite ratings ({name} = {value}); re-run "
                f"`recsys prepare` for ds={manifest.ds} with this recsys, which quarantines them"
            )


def sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def model_checksums(folder: Path) -> dict[str, str]:
    """The checksums train records: sha256 of each artifact in ``MODEL_FILES``."""
    return {name: sha256(folder / name) for name in MODEL_FILES if (folder / name).is_file()}


def check_model(folder: Path, manifest, names: Iterable[str] = MODEL_FILES) -> None:
    """Refuse a model run whose artifacts ``names`` differ from the checksums in its manifest.

    A manifest without checksums (written by an older recsys) is not checked.

    Raises:
        IntegrityError: one sentence naming the run, the file, the expected and found checksums.
    """
    recorded = manifest.artifacts or {}
    for name in names:
        if name not in recorded:
            continue
        path = folder / name
        again = f"re-run `recsys train` for ds={manifest.ds} (or pass an intact model run)"
        if not path.is_file():
            raise IntegrityError(
                f"model run {folder}: {name} is missing, its manifest records it with sha256 "
                f"{recorded[name][:12]}...; {again}"
            )
        found = sha256(path)
        if found != recorded[name]:
            raise IntegrityError(
                f"model run {folder}: {name} has sha256 {found[:12]}... ({path.stat().st_size:,} "
                f"bytes), its manifest records {recorded[name][:12]}...; the artifact was "
                f"changed or damaged: {again}"
            )
