"""Fetch an archive over HTTP with resume, and verify it against every known size and digest.

A run killed half way leaves ``DEST/<zip>.part``; the next run resumes it with an HTTP ``Range``
request, and the file is renamed to ``DEST/<zip>`` only once it is complete and verified. A
damaged or substituted file is caught by the pinned size and sha256 of
:data:`~recsys.data.download.releases.RELEASES`, or, where nothing is pinned, by
``Content-Length`` and the ``<zip>.md5`` file GroupLens publishes. Every network failure becomes
one :class:`~recsys.errors.RecsysError` sentence that says what to do next. Only the standard
library is used, so the downloader works in the smallest install.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from recsys import __version__
from recsys.data.download.releases import Release
from recsys.errors import RecsysError

__all__ = ["Progress", "check_existing_archive", "download_archive"]

logger = logging.getLogger(__name__)

Progress = Callable[[int, "int | None"], None]
"""``progress(done_bytes, total_bytes_or_None)``, called as chunks arrive."""

_CHUNK_SIZE = 1 << 20
_MD5_MAX_BYTES = 4096
_USER_AGENT = f"recsys/{__version__} (+MovieLens downloader; Python urllib)"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", re.IGNORECASE)
_MD5_HEX = re.compile(r"\b[0-9a-fA-F]{32}\b")


def download_archive(
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


def check_existing_archive(archive: Path, release: Release) -> None:
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
