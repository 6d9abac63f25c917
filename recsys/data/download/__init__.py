"""Download, verify and unpack the MovieLens releases published by GroupLens.

The nightly job runs unattended, so the downloader guards against the three things that go wrong
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

Modules: :mod:`~recsys.data.download.releases` (the pinned catalogue),
:mod:`~recsys.data.download.fetch` (HTTP with resume, verification),
:mod:`~recsys.data.download.extract` (safe extraction) and
:mod:`~recsys.data.download.pipeline` (:func:`download`, which ties them together).
"""

from recsys.data.download.fetch import Progress
from recsys.data.download.pipeline import download
from recsys.data.download.releases import (
    DEFAULT_BASE_URL,
    ENV_BASE_URL,
    RELEASES,
    Release,
    ReleaseFormat,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ENV_BASE_URL",
    "RELEASES",
    "Progress",
    "Release",
    "ReleaseFormat",
    "download",
]
