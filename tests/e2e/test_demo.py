"""`recsys demo` end to end (the nightly steps without Airflow): synthetic ml-latest-small asked
for by name -> prepare -> train."""

from __future__ import annotations

import pytest

from recsys import storage
from recsys.cli import main


@pytest.mark.slow
def test_demo_synthesises_by_name_prepares_and_trains(spark, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RECSYS_MOVIELENS_URL", "http://127.0.0.1:9/")  # nothing listens there
    code = main(
        [
            "demo",
            "--dataset",
            "synthetic:ml-latest-small",
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
    assert "using synthetic data of the ml-latest-small shape" in out
    assert "`recsys nightly`" in out
    # The default ranking model was trained and beats the popularity list it is printed next to.
    model = storage.read_manifest(storage.latest(str(tmp_path / "var"), "models"))
    assert model["objective"] == "ranking" and "ndcg@10" in out
    metrics = model["metrics"]
    assert metrics["test"]["ndcg@10"] > metrics["baselines"]["most_popular"]["ndcg@10"]
    folder = storage.latest(str(tmp_path / "var"), "prepared")
    manifest = storage.read_manifest(folder)
    assert manifest["n_users"] == 610 and manifest["quarantine"]["total"] == 0
    assert manifest["synthetic"] is True
    assert sum(manifest["counts"].values()) == manifest["rows_valid"] == 100_836
    # A second run reuses the synthesised files and is a new run of the same ds.
    assert (
        main(
            [
                "demo",
                "--dataset",
                "synthetic:ml-latest-small",
                "--offline",
                "--data-dir",
                str(tmp_path / "data"),
                "--root",
                str(tmp_path / "var"),
                "--ds",
                "2026-01-02",
                "--set",
                "train.epochs=1",
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
