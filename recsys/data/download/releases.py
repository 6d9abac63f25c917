"""The MovieLens releases GroupLens publishes: where they are, their layout and checksums.

This is the pinned catalogue the downloader trusts. Every archive is checked against the size
and sha256 pinned in :data:`RELEASES`; where nothing is pinned (the ``ml-latest*`` releases
change over time) the downloader falls back to ``Content-Length`` and the ``<zip>.md5`` file
GroupLens publishes next to the archive (see :mod:`recsys.data.download.fetch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "RELEASES",
    "Release",
    "ReleaseFormat",
]

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens/"
"""Where GroupLens publishes the MovieLens archives."""

ENV_BASE_URL = "RECSYS_MOVIELENS_URL"
"""Environment variable that replaces :data:`DEFAULT_BASE_URL` (a mirror, or a test server)."""

ReleaseFormat = Literal["ml-100k", "ml-1m", "ml-csv"]
"""File layout of a release: ``u.data`` (ml-100k), ``::``-separated ``.dat`` files (ml-1m and
ml-10m) or ``ratings.csv`` + ``movies.csv`` (ml-20m and newer)."""

_REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "ml-100k": ("u.data", "u.item"),
    "ml-1m": ("ratings.dat", "movies.dat"),
    "ml-csv": ("ratings.csv", "movies.csv"),
}


@dataclass(frozen=True)
class Release:
    """One MovieLens archive as GroupLens publishes it.

    Attributes:
        name: Release name used on the command line, e.g. ``"ml-25m"``.
        filename: Name of the zip on the server and in DEST, e.g. ``"ml-25m.zip"``.
        folder: Name of the top-level folder inside the zip; ``ml-10m.zip`` holds ``ml-10M100K``.
        size: Exact size of the zip in bytes, or ``None`` when it is not pinned.
        sha256: Hex sha256 of the zip, or ``None`` when it is not pinned (then the server's
            ``.md5`` file and ``Content-Length`` are used instead).
        format: File layout inside :attr:`folder`, see :data:`ReleaseFormat`.
        md5: Hex MD5 of the zip as GroupLens publishes it, or ``None``. Kept beside ``sha256``
            because for some releases (ml-10m) it is the only published value we know.
    """

    name: str
    filename: str
    folder: str
    size: int | None
    sha256: str | None
    format: ReleaseFormat
    md5: str | None = None

    @property
    def required_files(self) -> tuple[str, ...]:
        """Files that must exist in :attr:`folder` for the release to count as present."""
        return _REQUIRED_FILES[self.format]


# Sizes and sha256 digests: tensorflow/datasets, tensorflow_datasets/url_checksums/movielens.txt.
# MD5 digests: the values GroupLens publishes in <zip>.md5, as recorded in
# eli-osherovich/papers_with_code, datasets/movielens/dl_config.py.
# ml-32m: no published sha256, size or MD5 found; verified through the server's .md5 file.
# ml-latest-small / ml-latest: GroupLens regenerates these ("latest"), so nothing is pinned and a
# refresh cannot break the nightly run. For reference, tensorflow_datasets recorded
# ml-latest-small.zip as 978202 bytes with sha256
# 696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436.
RELEASES: dict[str, Release] = {
    release.name: release
    for release in (
        Release(
            name="ml-100k",
            filename="ml-100k.zip",
            folder="ml-100k",
            size=4924029,
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            format="ml-100k",
            md5="0e33842e24a9c977be4e0107933c0723",
        ),
        Release(
            name="ml-1m",
            filename="ml-1m.zip",
            folder="ml-1m",
            size=5917549,
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            format="ml-1m",
            md5="c4d9eecfca2ab87c1945afe126590906",
        ),
        Release(
            name="ml-10m",
            filename="ml-10m.zip",
            folder="ml-10M100K",
            size=None,
            sha256=None,
            format="ml-1m",
            md5="ce571fd55effeba0271552578f2648bd",
        ),
        Release(
            name="ml-20m",
            filename="ml-20m.zip",
            folder="ml-20m",
            size=198702078,
            sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            format="ml-csv",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
        ),
        Release(
            name="ml-25m",
            filename="ml-25m.zip",
            folder="ml-25m",
            size=261978986,
            sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            format="ml-csv",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
        ),
        Release(
            name="ml-32m",
            filename="ml-32m.zip",
            folder="ml-32m",
            size=None,
            sha256=None,
            format="ml-csv",
        ),
        Release(
            name="ml-latest-small",
            filename="ml-latest-small.zip",
            folder="ml-latest-small",
            size=None,
            sha256=None,
            format="ml-csv",
        ),
        Release(
            name="ml-latest",
            filename="ml-latest.zip",
            folder="ml-latest",
            size=None,
            sha256=None,
            format="ml-csv",
        ),
    )
}
"""Every release :func:`download` knows, by name."""
