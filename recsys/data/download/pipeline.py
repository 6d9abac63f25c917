"""The download pipeline: already there, else fetch and verify, then extract.

The nightly job runs unattended and calls :func:`download` every time, so the call is cheap and
idempotent when the data is present, resumes what an earlier run left behind, and with
``offline=True`` never opens a socket. Library code reports through :mod:`logging` and the
``progress`` callback; it never prints.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from recsys.data.download.extract import extract, is_complete
from recsys.data.download.fetch import Progress, check_existing_archive, download_archive
from recsys.data.download.releases import DEFAULT_BASE_URL, ENV_BASE_URL, RELEASES, Release
from recsys.errors import RecsysError

__all__ = ["download"]

logger = logging.getLogger(__name__)


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
    if is_complete(folder, release):
        logger.info("%s is already in %s", release.name, folder)
        return folder

    archive = dest_dir / release.filename
    if offline:
        if not archive.is_file():
            raise RecsysError(
                f"{release.name} is not in {dest_dir} (neither the folder {release.folder}/ nor "
                f"{release.filename} is there) and --offline forbids downloading it; run "
                f"without --offline, copy {release.filename} into {dest_dir}, or ask for "
                f"synthetic data by name with --dataset synthetic:{release.name}"
            )
        check_existing_archive(archive, release)
        return extract(archive, dest_dir, release)

    if archive.is_file():
        logger.info("%s is already downloaded; verifying and extracting it", archive)
        check_existing_archive(archive, release)
    else:
        url = _resolve_base_url(base_url) + release.filename
        dest_dir.mkdir(parents=True, exist_ok=True)
        download_archive(release, url, archive, timeout, progress)
    return extract(archive, dest_dir, release)


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
