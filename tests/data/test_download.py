"""Tests for the MovieLens downloader against a local HTTP server (no internet needed).

A ``ThreadingHTTPServer`` on 127.0.0.1 serves a tiny fake ``ml-latest-small.zip`` built in the
test, honours ``Range`` requests like files.grouplens.org does, and records every request so the
tests can assert when the downloader must not touch the network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from recsys.data import download as dl
from recsys.data.download import RELEASES, Release, download
from recsys.errors import RecsysError

NAME = "ml-latest-small"
ZIP_NAME = "ml-latest-small.zip"
RATINGS = "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n2,1,3.5,1\n"
MOVIES = "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,Heat (1995),Action\n"


def make_zip(members: dict[str, str]) -> bytes:
    """Build a zip archive in memory from ``{member name: text}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, text in members.items():
            zf.writestr(member, text)
    return buffer.getvalue()


ZIP_BYTES = make_zip(
    {
        "ml-latest-small/ratings.csv": RATINGS,
        "ml-latest-small/movies.csv": MOVIES,
        "ml-latest-small/README.txt": "fake release for tests\n" * 20,
    }
)
ZIP_MD5 = hashlib.md5(ZIP_BYTES).hexdigest()


@dataclass
class FakeServer:
    """What the test handler serves and what it saw."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    honor_range: bool = True
    cut_after: int | None = None  # send only this many body bytes once, then hang up
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)

    def zip_requests(self) -> list[tuple[str, str | None]]:
        """Requests for the zip itself (not the .md5)."""
        return [r for r in self.requests if r[0] == "/" + ZIP_NAME]


def make_handler(state: FakeServer) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``state``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
            """Keep pytest output clean."""

        def do_GET(self) -> None:  # noqa: N802 (stdlib name)
            range_header = self.headers.get("Range")
            state.requests.append((self.path, range_header))
            body = state.files.get(self.path)
            if body is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            if range_header and state.honor_range:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            end = len(body)
            if state.cut_after is not None:
                end, state.cut_after = start + state.cut_after, None
            self.wfile.write(body[start:end])

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """Serve the fake zip and its .md5 on 127.0.0.1 and point RECSYS_MOVIELENS_URL at it."""
    state = FakeServer(
        files={
            "/" + ZIP_NAME: ZIP_BYTES,
            "/" + ZIP_NAME + ".md5": f"{ZIP_MD5}  {ZIP_NAME}\n".encode(),
        }
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    # A short poll interval keeps shutdown() (and so each test) fast.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    monkeypatch.setenv(dl.ENV_BASE_URL, state.url)
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def assert_extracted(folder: Path, dest: Path) -> None:
    """The release folder is in place with the served content, and nothing else is left."""
    assert folder == dest / "ml-latest-small"
    assert (folder / "ratings.csv").read_text() == RATINGS
    assert (folder / "movies.csv").read_text() == MOVIES
    assert (dest / ZIP_NAME).read_bytes() == ZIP_BYTES
    assert sorted(p.name for p in dest.iterdir()) == ["ml-latest-small", ZIP_NAME]


def test_download_verifies_md5_and_extracts(server: FakeServer, tmp_path: Path) -> None:
    folder = download(NAME, tmp_path, timeout=2)

    assert_extracted(folder, tmp_path)
    assert server.requests == [("/" + ZIP_NAME, None), ("/" + ZIP_NAME + ".md5", None)]


def test_base_url_argument_overrides_environment(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(dl.ENV_BASE_URL, "http://127.0.0.1:9/nowhere/")

    folder = download(NAME, tmp_path, base_url=server.url.rstrip("/"), timeout=2)

    assert_extracted(folder, tmp_path)


def test_second_call_makes_no_request(server: FakeServer, tmp_path: Path) -> None:
    first = download(NAME, tmp_path, timeout=2)
    server.requests.clear()

    second = download(NAME, tmp_path, timeout=2)

    assert second == first
    assert server.requests == []


def test_missing_md5_file_is_not_an_error(server: FakeServer, tmp_path: Path) -> None:
    del server.files["/" + ZIP_NAME + ".md5"]

    folder = download(NAME, tmp_path, timeout=2)

    assert_extracted(folder, tmp_path)
    assert ("/" + ZIP_NAME + ".md5", None) in server.requests


def test_resume_from_partial_file(server: FakeServer, tmp_path: Path) -> None:
    half = len(ZIP_BYTES) // 2
    (tmp_path / (ZIP_NAME + ".part")).write_bytes(ZIP_BYTES[:half])

    folder = download(NAME, tmp_path, timeout=2)

    assert server.zip_requests() == [("/" + ZIP_NAME, f"bytes={half}-")]
    assert_extracted(folder, tmp_path)


def test_resume_restarts_when_server_ignores_range(server: FakeServer, tmp_path: Path) -> None:
    server.honor_range = False
    (tmp_path / (ZIP_NAME + ".part")).write_bytes(b"stale bytes from another file")

    folder = download(NAME, tmp_path, timeout=2)

    assert server.zip_requests()[0][1] == f"bytes={len(b'stale bytes from another file')}-"
    assert_extracted(folder, tmp_path)


def test_complete_part_left_by_killed_run_is_finished(server: FakeServer, tmp_path: Path) -> None:
    (tmp_path / (ZIP_NAME + ".part")).write_bytes(ZIP_BYTES)

    folder = download(NAME, tmp_path, timeout=2)

    assert server.zip_requests() == [("/" + ZIP_NAME, f"bytes={len(ZIP_BYTES)}-")]
    assert_extracted(folder, tmp_path)


def test_md5_mismatch_deletes_partial_file(server: FakeServer, tmp_path: Path) -> None:
    server.files["/" + ZIP_NAME + ".md5"] = b"0123456789abcdef0123456789abcdef  x.zip\n"

    with pytest.raises(RecsysError) as caught:
        download(NAME, tmp_path, timeout=2)

    message = str(caught.value)
    assert ZIP_NAME in message
    assert "0123456789abcdef0123456789abcdef" in message
    assert ZIP_MD5 in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("changes", "expected", "actual"),
    [
        ({"sha256": "ab" * 32}, "ab" * 32, hashlib.sha256(ZIP_BYTES).hexdigest()),
        ({"md5": "cd" * 16}, "cd" * 16, ZIP_MD5),
        ({"size": len(ZIP_BYTES) + 1}, f"{len(ZIP_BYTES) + 1} bytes", f"{len(ZIP_BYTES)} bytes"),
    ],
    ids=["sha256", "pinned-md5", "size"],
)
def test_pinned_value_mismatch_raises(
    server: FakeServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, object],
    expected: str,
    actual: str,
) -> None:
    monkeypatch.setitem(RELEASES, NAME, dataclasses.replace(RELEASES[NAME], **changes))

    with pytest.raises(RecsysError) as caught:
        download(NAME, tmp_path, timeout=2)

    message = str(caught.value)
    assert ZIP_NAME in message
    assert f"expected {next(iter(changes))}" in message
    assert expected in message
    assert actual in message
    assert list(tmp_path.iterdir()) == []


def test_matching_pinned_sha256_skips_md5_file(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = dataclasses.replace(
        RELEASES[NAME], size=len(ZIP_BYTES), sha256=hashlib.sha256(ZIP_BYTES).hexdigest()
    )
    monkeypatch.setitem(RELEASES, NAME, pinned)

    folder = download(NAME, tmp_path, timeout=2)

    assert_extracted(folder, tmp_path)
    assert server.requests == [("/" + ZIP_NAME, None)]


def test_server_down_raises_clear_error(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"

    with pytest.raises(RecsysError) as caught:
        download(NAME, tmp_path / "data", base_url=url, timeout=2)

    message = str(caught.value)
    assert message.startswith(f"could not download {NAME} from {url}{ZIP_NAME}: ")
    assert "refused" in message.lower()
    assert "--offline" in message
    assert "recsys data synth" in message
    assert "\n" not in message
    assert not (tmp_path / "data" / ZIP_NAME).exists()


def test_silent_server_times_out(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the connection in the kernel but never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"

        with pytest.raises(RecsysError) as caught:
            download(NAME, tmp_path, base_url=url, timeout=0.2)

    assert str(caught.value).startswith(f"could not download {NAME} from {url}{ZIP_NAME}: ")
    assert "no answer within 0.2 s" in str(caught.value)


def test_interrupted_download_keeps_part_and_next_run_resumes(
    server: FakeServer, tmp_path: Path
) -> None:
    server.cut_after = 100

    with pytest.raises(RecsysError, match=r"stopped after 100 of \d+ bytes; run the command again"):
        download(NAME, tmp_path, timeout=2)
    assert (tmp_path / (ZIP_NAME + ".part")).read_bytes() == ZIP_BYTES[:100]
    assert not (tmp_path / ZIP_NAME).exists()

    folder = download(NAME, tmp_path, timeout=2)

    assert server.zip_requests() == [("/" + ZIP_NAME, None), ("/" + ZIP_NAME, "bytes=100-")]
    assert_extracted(folder, tmp_path)


def test_http_404_raises_clear_error(server: FakeServer, tmp_path: Path) -> None:
    server.files.clear()

    with pytest.raises(RecsysError, match=r"could not download .*: HTTP 404 Not Found; check"):
        download(NAME, tmp_path, timeout=2)
    assert not (tmp_path / NAME).exists()


def test_offline_without_files_raises(server: FakeServer, tmp_path: Path) -> None:
    with pytest.raises(RecsysError, match=r"ml-latest-small is not in .*--offline"):
        download(NAME, tmp_path, offline=True)
    assert server.requests == []


def test_offline_returns_existing_folder(server: FakeServer, tmp_path: Path) -> None:
    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text(RATINGS)
    (folder / "movies.csv").write_text(MOVIES)

    assert download(NAME, tmp_path, offline=True) == folder
    assert server.requests == []


def test_offline_extracts_zip_already_in_dest(server: FakeServer, tmp_path: Path) -> None:
    (tmp_path / ZIP_NAME).write_bytes(ZIP_BYTES)

    folder = download(NAME, tmp_path, offline=True)

    assert_extracted(folder, tmp_path)
    assert server.requests == []


def test_incomplete_folder_is_replaced(server: FakeServer, tmp_path: Path) -> None:
    (tmp_path / "ml-latest-small").mkdir()
    (tmp_path / "ml-latest-small" / "ratings.csv").write_text("truncated")

    folder = download(NAME, tmp_path, timeout=2)

    assert (folder / "ratings.csv").read_text() == RATINGS
    assert (folder / "movies.csv").read_text() == MOVIES
    assert len(server.zip_requests()) == 1


def test_unknown_name_lists_known_releases(tmp_path: Path) -> None:
    with pytest.raises(RecsysError) as caught:
        download("ml-3m", tmp_path)

    message = str(caught.value)
    assert "'ml-3m'" in message
    for name in RELEASES:
        assert name in message
    assert list(tmp_path.iterdir()) == []


def test_progress_reports_monotone_bytes(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dl.fetch, "_CHUNK_SIZE", 64)
    calls: list[tuple[int, int | None]] = []

    download(NAME, tmp_path, timeout=2, progress=lambda done, total: calls.append((done, total)))

    done = [d for d, _ in calls]
    assert len(calls) > 2
    assert done == sorted(done)
    assert {total for _, total in calls} == {len(ZIP_BYTES)}
    assert done[-1] == len(ZIP_BYTES)


def test_zip_slip_is_refused(server: FakeServer, tmp_path: Path) -> None:
    evil = make_zip(
        {
            "ml-latest-small/ratings.csv": RATINGS,
            "ml-latest-small/movies.csv": MOVIES,
            "ml-latest-small/../../escaped.txt": "owned",
        }
    )
    server.files["/" + ZIP_NAME] = evil
    server.files["/" + ZIP_NAME + ".md5"] = hashlib.md5(evil).hexdigest().encode()
    dest = tmp_path / "dest"

    with pytest.raises(RecsysError, match="unsafe path"):
        download(NAME, dest, timeout=2)

    assert not (tmp_path / "escaped.txt").exists()
    assert not (dest / "ml-latest-small").exists()
    assert [p.name for p in dest.iterdir()] == [ZIP_NAME]


def test_release_table_is_consistent() -> None:
    assert set(RELEASES) == {
        "ml-100k",
        "ml-1m",
        "ml-10m",
        "ml-20m",
        "ml-25m",
        "ml-32m",
        "ml-latest-small",
        "ml-latest",
    }
    assert RELEASES["ml-10m"].folder == "ml-10M100K"
    assert RELEASES["ml-10m"].format == "ml-1m"
    assert RELEASES["ml-100k"].format == "ml-100k"
    assert RELEASES["ml-25m"].format == "ml-csv"
    for name, release in RELEASES.items():
        assert isinstance(release, Release)
        assert release.name == name
        assert release.filename == f"{name}.zip"
        assert release.format in {"ml-100k", "ml-1m", "ml-csv"}
        if release.sha256 is not None:
            assert len(release.sha256) == 64
            int(release.sha256, 16)
        if release.md5 is not None:
            assert len(release.md5) == 32
            int(release.md5, 16)
    for name in ("ml-latest-small", "ml-latest"):
        assert RELEASES[name].sha256 is None
        assert RELEASES[name].size is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        RELEASES["ml-1m"].size = 0  # type: ignore[misc]
