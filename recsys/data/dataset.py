"""The input of a night: a path as it is, a MovieLens release downloaded, or synthetic data
only when asked for by name (``synthetic:<shape>``).

``recsys data get``, ``recsys nightly`` (its DAG's ``source`` task) and ``recsys demo`` call
:func:`get_dataset`. A path that does not exist or a release name that is not one is an error,
never a reason to fall back to synthetic data: a synthetic table must never replace a real one
without someone asking for it. A synthetic folder carries its ``planted.npz``, which is how
prepare knows (and its manifest says) that the data is synthetic.
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
SYNTH_PREFIX = "synthetic:"  # --dataset synthetic:<shape> asks for synthetic data by name
SYNTH_MARK = "planted.npz"  # written by the generator beside ratings.csv, by nothing else


@dataclass(frozen=True)
class Dataset:
    path: Path
    synthetic: bool = False
    note: str = ""  # that the data is synthetic, in one line a person should see


def is_synthetic(path: str | Path) -> bool:
    """Whether ``path`` (a ratings file or its folder) was written by the synthetic generator."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    return (folder / SYNTH_MARK).is_file()


def get_dataset(
    name: str, data_dir: str | Path, offline: bool = False, download: Callable | None = None
) -> Dataset:
    """An existing path as it is; ``synthetic:<shape>`` -> a synthetic set of that shape under
    ``data_dir``; a release name -> its downloaded folder under ``data_dir``. Anything else
    (a path that does not exist, a name that is no release) is a ``RecsysError``, and so is a
    release that cannot be downloaded: nothing is written outside ``data_dir``.
    ``download(name, dest, offline)`` defaults to :func:`recsys.data.download.download`."""
    from recsys.data.download import RELEASES

    if name.startswith(SYNTH_PREFIX):
        return _synthetic(name[len(SYNTH_PREFIX) :], data_dir)
    if Path(name).exists():
        return Dataset(Path(name), synthetic=is_synthetic(name))
    if name not in RELEASES:
        raise RecsysError(
            f"--dataset {name!r} is neither an existing path nor a MovieLens release "
            f"({', '.join(RELEASES)}); fix the path or the name, or ask for synthetic data "
            f"by name with --dataset {SYNTH_PREFIX}ml-latest-small"
        )
    if download is None:
        from recsys.data.download import download
    return Dataset(download(name, str(data_dir), offline=offline))


def _synthetic(shape: str, data_dir: str | Path) -> Dataset:
    """The synthetic set of ``shape`` under ``data_dir`` (written once, then reused)."""
    from recsys.data.synth import synthesize

    if shape not in SYNTH_SHAPES:
        raise RecsysError(
            f"--dataset {SYNTH_PREFIX}{shape} names no synthetic shape; use one of "
            f"{', '.join(SYNTH_PREFIX + s for s in SYNTH_SHAPES)}"
        )
    source = Path(data_dir) / f"synth-{shape}"
    if not (source / "ratings.csv").is_file() or not (source / SYNTH_MARK).is_file():
        synthesize(source, shape)
    note = f"using synthetic data of the {shape} shape (asked for by {SYNTH_PREFIX}{shape})"
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
