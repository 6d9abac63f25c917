"""`make run` end to end: no network -> synthesise ml-latest-small -> prepare -> summary."""

from __future__ import annotations

import pytest

from recsys import storage
from recsys.cli import main


@pytest.mark.slow
def test_demo_offline_synthesises_and_prepares(spark, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSYS_MOVIELENS_URL", "http://127.0.0.1:9/")  # nothing listens there
    code = main(
        [
            "demo",
            "--data-dir",
            str(tmp_path / "data"),
            "--root",
            str(tmp_path / "var"),
            "--ds",
            "2026-01-02",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "synthesising" in out and "stops after prepare" in out
    folder = storage.latest(str(tmp_path / "var"), "prepared")
    manifest = storage.read_manifest(folder)
    assert manifest["n_users"] == 610 and manifest["quarantine"]["total"] == 0
    assert sum(manifest["counts"].values()) == manifest["rows_valid"] == 100_836
    # A second run reuses the synthesised files and is a new run of the same ds.
    assert (
        main(
            [
                "demo",
                "--offline",
                "--data-dir",
                str(tmp_path / "data"),
                "--root",
                str(tmp_path / "var"),
                "--ds",
                "2026-01-02",
            ]
        )
        == 0
    )
    assert storage.latest(str(tmp_path / "var"), "prepared") != folder


def test_download_error_is_one_sentence(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSYS_MOVIELENS_URL", "http://127.0.0.1:9/")
    code = main(["data", "download", "ml-latest-small", "--dest", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("recsys data: error: could not download ml-latest-small")
    assert "\n" not in err
