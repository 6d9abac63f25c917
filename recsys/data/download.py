"""Download, verify and unpack the MovieLens releases published by GroupLens.

The nightly job runs unattended, so this module guards against the three things that go wrong
with large downloads:

* A run killed half way. The archive is written to ``DEST/<zip>.part`` and renamed only once it
  is complete and verified; the next run resumes the ``.part`` with an HTTP ``Range`` request.
  Extraction happens in a hidden temporary folder that is renamed into place at the end, so an
  interrupted run leaves only ignorable debris, never a half-filled dataset folder.
* A damaged or substituted file. Every archive is checked against the size and sha256 pinned in
  :data:`RELEASES`; where nothing is pinned (the ``ml-latest*`` releases change over time) the
  size is checked against ``Content-Length`` and the MD5 against the ``<zip>.md5`` file GroupLens
  publishes next to the archive. Members that would land outside the target folder ("zip slip")
  are refused.
* A machine without network access. ``offline=True`` never opens a socket, and every network
  failure becomes one :class:`~recsys.errors.RecsysError` sentence that says what to do next.

Only the standard library is used, so the downloader works in the smallest install. Library code
reports through :mod:`logging` and the ``progress`` callback; it never prints.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from recsys import __version__
from recsys.errors import RecsysError

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "RELEASES",
    "Progress",
    "Release",
    "ReleaseFormat",
    "download",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens/"
"""Where GroupLens publishes the MovieLens archives."""

ENV_BASE_URL = "RECSYS_MOVIELENS_URL"
"""Environment variable that replaces :data:`DEFAULT_BASE_URL` (a mirror, or a test server)."""

ReleaseFormat = Literal["ml-100k", "ml-1m", "ml-csv"]
"""File layout of a release: ``u.data`` (ml-100k), ``::``-separated ``.dat`` files (ml-1m and
ml-10m) or ``ratings.csv`` + ``movies.csv`` (ml-20m and newer)."""

Progress = Callable[[int, "int | None"], None]
"""``progress(done_bytes, total_bytes_or_None)``, called as chunks arrive."""

_CHUNK_SIZE = 1 << 20
_MD5_MAX_BYTES = 4096
_USER_AGENT = f"recsys/{__version__} (+MovieLens downloader; Python urllib)"
_REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "ml-100k": ("u.data", "u.item"),
    "ml-1m": ("ratings.dat", "movies.dat"),
    "ml-csv": ("ratings.csv", "movies.csv"),
}
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", re.IGNORECASE)
_MD5_HEX = re.compile(r"\b[0-9a-fA-F]{32}\b")


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


def download(
    name: str,
    dest: str | os.PathLike[str],
    *,
    offline: bool = False,
    base_url: str | None = None,
    timeout: float = 10.0,
    progress: Progress | None = None,
) -> Path:
    """Download, verify and extract the MovieLens release ``name`` under ``dest``.

    The call is idempotent and cheap when the data is already there: a complete
    ``DEST/<folder>`` is returned without touching the network, and a verified ``DEST/<zip>``
    is extracted without downloading it again. An interrupted download is resumed from
    ``DEST/<zip>.part``.

    Args:
        name: A key of :data:`RELEASES`, e.g. ``"ml-25m"``.
        dest: Directory that receives the zip and the extracted folder; created if missing.
        offline: Never use the network; use only what is already in ``dest`` (the extracted
            folder, or the zip, which is then verified and extracted).
        base_url: Server folder holding the zips. Defaults to the ``RECSYS_MOVIELENS_URL``
            environment variable, then to :data:`DEFAULT_BASE_URL`.
        timeout: Seconds to wait for the connection and for each read before giving up, so a
            dead network fails fast instead of hanging the nightly run.
        progress: Called as ``progress(done_bytes, total_bytes_or_None)`` after each chunk;
            ``done_bytes`` includes bytes resumed from an earlier run.

    Returns:
        The extracted dataset folder, ``DEST/<folder>``.

    Raises:
        RecsysError: For an unknown name, a release missing in offline mode, a network failure,
            a checksum or size mismatch, or an unreadable or unsafe archive.
    """
    release = _lookup(name)
    dest_dir = Path(dest).expanduser()
    folder = dest_dir / release.folder
    if _is_complete(folder, release):
        logger.info("%s is already in %s", release.name, folder)
        return folder

    archive = dest_dir / release.filename
    if offline:
        if not archive.is_file():
            raise RecsysError(
                f"{release.name} is not in {dest_dir} (neither the folder {release.folder}/ nor "
                f"{release.filename} is there) and --offline forbids downloading it; run "
                f"without --offline, copy {release.filename} into {dest_dir}, or generate data "
                f"with `recsys data synth`"
            )
        _check_existing_archive(archive, release)
        return _extract(archive, dest_dir, release)

    if archive.is_file():
        logger.info("%s is already downloaded; verifying and extracting it", archive)
        _check_existing_archive(archive, release)
    else:
        url = _resolve_base_url(base_url) + release.filename
        dest_dir.mkdir(parents=True, exist_ok=True)
        _download_archive(release, url, archive, timeout, progress)
    return _extract(archive, dest_dir, release)


def _lookup(name: str) -> Release:
    """Return the release called ``name`` or raise an error that lists the known names."""
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise RecsysError(f"unknown MovieLens release {name!r}; known releases: {known}") from None


def _resolve_base_url(base_url: str | None) -> str:
    """Pick the server folder (argument, then environment, then GroupLens) and normalise it."""
    url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise RecsysError(
            f"MovieLens base URL {url!r} must start with http:// or https:// (set it with "
            f"base_url or the {ENV_BASE_URL} environment variable)"
        )
    return url if url.endswith("/") else url + "/"


def _is_complete(folder: Path, release: Release) -> bool:
    """Whether ``folder`` holds an extracted release (all of its required files)."""
    return folder.is_dir() and all((folder / f).is_file() for f in release.required_files)


def _download_archive(
    release: Release, url: str, archive: Path, timeout: float, progress: Progress | None
) -> None:
    """Fetch ``url`` into ``<archive>.part``, verify it, then rename it to ``archive``.

    A verification failure deletes the ``.part`` (resuming a damaged file cannot repair it);
    a network failure keeps it so that the next run resumes where this one stopped.
    """
    part = archive.with_name(archive.name + ".part")
    server_total = _fetch(release, url, part, timeout, progress)
    server_md5 = None if release.sha256 else _fetch_md5(url + ".md5", timeout)
    mismatch = _verify(part, release, server_total, server_md5)
    if not (release.sha256 or release.md5 or server_md5):
        logger.warning("no checksum known for %s; checked its size only", release.filename)
    if mismatch is not None:
        part.unlink(missing_ok=True)
        what, expected, actual = mismatch
        raise RecsysError(
            f"{release.filename} downloaded from {url} is damaged: expected {what} {expected}, "
            f"got {actual}; the partial file was deleted, run the command again to download it "
            f"afresh"
        )
    os.replace(part, archive)
    logger.info("downloaded and verified %s", archive)


def _fetch(
    release: Release, url: str, part: Path, timeout: float, progress: Progress | None
) -> int | None:
    """Download ``url`` into ``part``, resuming an existing ``part`` with a Range request.

    Returns:
        The archive size announced by the server, or the pinned size, or ``None`` if neither
        is known.
    """
    for _attempt in range(2):
        offset = part.stat().st_size if part.is_file() else 0
        if release.size is not None and offset > release.size:
            logger.warning("%s is larger than %s; starting afresh", part, release.filename)
            part.unlink()
            offset = 0
        if offset and offset == release.size:
            logger.info("%s is already complete", part)
            return release.size

        request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
            logger.info("resuming %s at byte %d", url, offset)
        else:
            logger.info("downloading %s", url)
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code != 416 or not offset:
                    raise _network_error(release, url, part.parent, exc, timeout) from exc
                # 416: the range starts at or after the end, so the part is either complete
                # (killed before the rename) or stale (the file changed on the server).
                _, total = _parse_content_range(exc.headers.get("Content-Range"))
            if total == offset:
                return total
            logger.warning("server refused to resume %s; starting afresh", part)
            part.unlink()
            continue
        except (OSError, http.client.HTTPException) as exc:
            raise _network_error(release, url, part.parent, exc, timeout) from exc

        with response:
            length = _int_or_none(response.headers.get("Content-Length"))
            if response.status == 206:
                start, total = _parse_content_range(response.headers.get("Content-Range"))
                if start != offset:
                    logger.warning("server resumed %s at the wrong byte; starting afresh", part)
                    part.unlink()
                    continue
                if total is None and length is not None:
                    total = offset + length
                mode, done = "ab", offset
            else:
                if offset:
                    logger.info("server does not support resuming; downloading %s afresh", url)
                mode, done, total = "wb", 0, length
            done = _copy(response, part, mode, done, total, release, url, progress)

        if total is not None and done != total:
            raise RecsysError(
                f"download of {release.name} from {url} stopped after {done} of {total} bytes; "
                f"run the command again to resume it"
            )
        return total
    raise RecsysError(
        f"could not resume {part.name} from {url}: the server answered inconsistently twice; "
        f"delete {part} and run the command again"
    )


def _copy(
    response: http.client.HTTPResponse,
    part: Path,
    mode: str,
    done: int,
    total: int | None,
    release: Release,
    url: str,
    progress: Progress | None,
) -> int:
    """Stream ``response`` into ``part`` chunk by chunk; returns the bytes now in ``part``."""
    if progress is not None:
        progress(done, total)
    with part.open(mode) as out:
        while True:
            try:
                chunk = response.read(_CHUNK_SIZE)
            except (OSError, http.client.HTTPException) as exc:
                out.flush()
                raise RecsysError(
                    f"download of {release.name} from {url} was interrupted after {done} bytes: "
                    f"{_reason(exc)}; run the command again to resume it"
                ) from exc
            if not chunk:
                return done
            out.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)


def _fetch_md5(url: str, timeout: float) -> str | None:
    """Return the MD5 from the ``.md5`` file at ``url``, or ``None`` if there is none.

    A missing or unreadable ``.md5`` is not an error: the size check still applies, and mirrors
    often do not copy these files.
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read(_MD5_MAX_BYTES).decode("ascii", errors="replace")
    except urllib.error.HTTPError as exc:
        exc.close()
        logger.info("no %s (HTTP %d); checking the size only", url, exc.code)
        return None
    except (OSError, http.client.HTTPException) as exc:
        logger.warning("could not fetch %s (%s); checking the size only", url, _reason(exc))
        return None
    match = _MD5_HEX.search(text)
    if match is None:
        logger.warning("%s holds no MD5 digest; checking the size only", url)
        return None
    return match.group(0).lower()


def _verify(
    path: Path, release: Release, server_total: int | None, server_md5: str | None
) -> tuple[str, str, str] | None:
    """Check ``path`` against every known size and digest.

    Returns:
        ``(what, expected, actual)`` for the first mismatch, or ``None`` if all checks pass.
    """
    actual_size = path.stat().st_size
    for expected_size in (release.size, server_total):
        if expected_size is not None and actual_size != expected_size:
            return "size", f"{expected_size} bytes", f"{actual_size} bytes"

    expected: list[tuple[str, str, str]] = []  # (label, algorithm, hex digest)
    if release.sha256:
        expected.append(("sha256", "sha256", release.sha256.lower()))
    if release.md5:
        expected.append(("md5", "md5", release.md5.lower()))
    if server_md5:
        expected.append(("md5 (from the server's .md5 file)", "md5", server_md5))
    if not expected:
        return None

    digests = _digests(path, {algorithm for _, algorithm, _ in expected})
    for label, algorithm, value in expected:
        if digests[algorithm] != value:
            return label, value, digests[algorithm]
    logger.info("verified %s (%s)", path.name, ", ".join(label for label, _, _ in expected))
    return None


def _digests(path: Path, algorithms: set[str]) -> dict[str, str]:
    """Hex digests of ``path`` for each of ``algorithms``, reading the file once."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_SIZE):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def _check_existing_archive(archive: Path, release: Release) -> None:
    """Verify a zip found in DEST against the pinned values before extracting it.

    The file is left in place on a mismatch: it may have been put there by hand, so the user
    decides whether to delete it.
    """
    if not (release.size or release.sha256 or release.md5):
        logger.info("nothing pinned for %s; using %s as it is", release.name, archive)
        return
    mismatch = _verify(archive, release, None, None)
    if mismatch is not None:
        what, expected, actual = mismatch
        raise RecsysError(
            f"{archive} does not match the published {release.name}: expected {what} "
            f"{expected}, got {actual}; delete it and run the command again to download it"
        )


def _extract(archive: Path, dest_dir: Path, release: Release) -> Path:
    """Extract ``archive`` into a temporary folder, then rename the release folder into place.

    Returns:
        ``DEST/<folder>``.
    """
    folder = dest_dir / release.folder
    tmp = Path(tempfile.mkdtemp(prefix=f".{release.folder}.extract-", dir=dest_dir))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(info.filename, archive)
                zf.extractall(tmp)
        except (zipfile.BadZipFile, EOFError) as exc:
            raise RecsysError(
                f"{archive} is not a readable zip archive ({exc}); delete it and run the "
                f"command again to download it afresh"
            ) from exc
        extracted = tmp / release.folder
        if not _is_complete(extracted, release):
            raise RecsysError(
                f"{archive} does not contain {release.folder}/ with "
                f"{', '.join(release.required_files)}; delete it and run the command again to "
                f"download it afresh"
            )
        if folder.exists():
            stale = dest_dir / f".{release.folder}.stale-{uuid.uuid4().hex[:8]}"
            logger.warning("moving the incomplete %s aside to %s", folder, stale)
            folder.rename(stale)
        try:
            extracted.rename(folder)
        except OSError:
            if not _is_complete(folder, release):  # else a concurrent run finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("extracted %s to %s", archive.name, folder)
    return folder


def _check_member(name: str, archive: Path) -> None:
    """Refuse a zip member whose path could escape the extraction folder (zip slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise RecsysError(f"{archive} contains the unsafe path {name!r}; refusing to extract it")


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``Content-Range: bytes START-END/TOTAL`` (or ``bytes */TOTAL``) into start, total."""
    match = _CONTENT_RANGE.match(value.strip()) if value else None
    if match is None:
        return None, None
    start, total = match.groups()
    return _int_or_none(start), _int_or_none(total)


def _int_or_none(value: str | None) -> int | None:
    """``int(value)`` for a decimal header value, else ``None``."""
    return int(value) if value is not None and value.strip().isdigit() else None


def _reason(exc: BaseException) -> str:
    """A short human reason for a network exception (``Connection refused``, ``timed out``)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    reason: object = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError):
        return "timed out"
    text = getattr(reason, "strerror", None) or str(reason)
    return text or type(reason).__name__


def _network_error(
    release: Release, url: str, dest_dir: Path, exc: BaseException, timeout: float
) -> RecsysError:
    """The one-sentence error for a download that could not start."""
    reason = _reason(exc)
    if reason == "timed out":
        reason = f"no answer within {timeout:g} s"
    return RecsysError(
        f"could not download {release.name} from {url}: {reason}; check the network, or use "
        f"--offline with files already in {dest_dir}, or generate data with `recsys data synth`"
    )
