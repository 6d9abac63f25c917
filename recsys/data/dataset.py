"""The input of a night: a release downloaded, else a synthetic set of its shape, or a path.

``recsys data get`` and ``recsys demo`` call :func:`get_dataset`; the one line saying that the
data is synthetic travels in the result (``Dataset.note``), for the caller to show.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recsys.errors import RecsysError

log = logging.getLogger(__name__)

SYNTH_SHAPES = ("ml-latest-small", "ml-1m", "ml-25m")  # releases synthesised in their own shape


@dataclass(frozen=True)
class Dataset:
    path: Path
    synthetic: bool = False
    note: str = ""  # why the data is synthetic, in one line a person should see


def get_dataset(
    name: str, data_dir: str | Path, offline: bool = False, download: Callable | None = None
) -> Dataset:
    """A release name -> its downloaded folder; offline (or unreachable) -> a synthetic set of
    its shape. An existing path is used as it is. ``download(name, dest, offline)`` defaults to
    :func:`recsys.data.download.download` (the command line passes one with a progress bar)."""
    from recsys.data.synth import synthesize

    if Path(name).exists():
        return Dataset(Path(name))
    if download is None:
        from recsys.data.download import download
    try:
        return Dataset(download(name, str(data_dir), offline=offline))
    except RecsysError as exc:
        log.debug("download failed: %s", exc)
        source = Path(data_dir) / f"synth-{name}"
        shape = name if name in SYNTH_SHAPES else "ml-latest-small"
        note = f"{name} is not available ({exc}); using synthetic data of the {shape} shape"
        if not (source / "ratings.csv").is_file():
            synthesize(source, shape)
        return Dataset(source, synthetic=True, note=note)


def synth_dataset(
    shape: str,
    dest: str | None,
    users: int | None = None,
    items: int | None = None,
    ratings: int | None = None,
    seed: int = 0,
    data_dir: str = "./data",
):
    """Write a synthetic set of a named shape, or of custom counts (all three); returns the
    generator's result and the folder (default ``<data_dir>/synth-<shape>``)."""
    from recsys.data.synth import SHAPES, shape_from_counts, synthesize

    if any(v is not None for v in (users, items, ratings)):
        if None in (users, items, ratings):
            raise RecsysError("a custom shape needs all of --users, --items and --ratings")
        spec, label = shape_from_counts(users, items, ratings), f"{users}x{items}"
    else:
        if shape not in SHAPES:
            raise RecsysError(f"--shape must be one of {', '.join(SHAPES)}, got {shape!r}")
        spec, label = shape, shape
    dest = dest or os.path.join(data_dir, f"synth-{label}")
    return synthesize(dest, spec, seed=seed), dest
