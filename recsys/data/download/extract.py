"""Unpack a verified archive safely: never half a dataset folder, never a path outside it.

Extraction happens in a hidden temporary folder inside DEST that is renamed into place at the
end, so an interrupted run leaves only ignorable debris, never a half-filled dataset folder that
a later run would mistake for a complete one. Members that would land outside the target folder
("zip slip") are refused before anything is written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from recsys.data.download.releases import Release
from recsys.errors import RecsysError

__all__ = ["extract", "is_complete"]

logger = logging.getLogger(__name__)


def is_complete(folder: Path, release: Release) -> bool:
    """Whether ``folder`` holds an extracted release (all of its required files)."""
    return folder.is_dir() and all((folder / f).is_file() for f in release.required_files)


def extract(archive: Path, dest_dir: Path, release: Release) -> Path:
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
        if not is_complete(extracted, release):
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
            if not is_complete(folder, release):  # else a concurrent run finished first
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
