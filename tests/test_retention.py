"""Retention: old runs go, what a ``_LATEST`` pointer names (and what it needs) stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys import storage
from recsys.cli import main
from recsys.errors import RecsysError
from recsys.retention import apply_retention


def _run(root: Path, table: str, ds: str, run: str, links=None, latest=True) -> Path:
    paths = storage.new_run(str(root), table, ds, run)
    (paths.staging / "data.bin").write_bytes(b"x" * 1000)
    manifest = {"ds": ds, "run": run, **{k: {"path": str(v)} for k, v in (links or {}).items()}}
    return storage.commit(paths, manifest, move_table_latest=latest)


@pytest.fixture
def history(tmp_path):
    """Three nights; the table published on the first night is still _LATEST."""
    root = tmp_path / "var"
    runs = {}
    for day in ("2026-01-01", "2026-01-10", "2026-01-20"):
        prep = _run(root, "prepared", day, "r")
        evaluated = _run(root, "models", day, "r", {"prepared": prep})
        refit = _run(root, "models", day, "r-refit", {"prepared": prep, "refit_of": evaluated})
        table = _run(
            root, "recommendations", day, "r", {"model": refit, "prepared": prep}, latest=False
        )
        runs[day] = {"prepared": prep, "evaluated": evaluated, "refit": refit, "table": table}
    # Only the first night's table was published (the later gates refused).
    first = runs["2026-01-01"]["table"]
    storage.write_pointer(root / "recommendations" / "_LATEST", "2026-01-01", "r", first)
    # A killed run's debris on the first night.
    (root / "models" / "ds=2026-01-01" / "_staging-run=killed").mkdir()
    return root, runs


def test_old_runs_go_but_the_published_table_and_its_lineage_stay(history):
    root, runs = history
    out = apply_retention(str(root), days=5, ds="2026-01-21")
    assert out["cutoff"] == "2026-01-16"
    first, second = runs["2026-01-01"], runs["2026-01-10"]
    # Published table -> refit model -> its evaluated twin -> prepared run: all kept.
    for folder in first.values():
        assert (folder / "manifest.json").is_file(), folder
    for folder in second.values():
        assert not folder.exists(), folder
    assert not (root / "models" / "ds=2026-01-01" / "_staging-run=killed").exists()
    assert not (root / "prepared" / "ds=2026-01-10").exists()  # emptied ds folders go too
    for folder in runs["2026-01-20"].values():  # newer than the cut-off
        assert folder.is_dir()
    assert out["bytes_freed"] >= 4 * 1000
    assert sorted(out["kept_in_use"]) == sorted(str(p) for p in first.values())
    # Readers still resolve every pointer.
    assert storage.latest(str(root), "recommendations") == first["table"]
    assert storage.resolve(str(root), "models", "2026-01-01") in (first["refit"],)


def test_a_ds_pointer_naming_a_deleted_run_moves_to_a_kept_one(history):
    root, runs = history
    first = runs["2026-01-01"]
    # The ds pointer of the first night names its refit (the last model committed that night);
    # make it name the evaluated model, then keep only the refit in use.
    storage.write_pointer(
        root / "models" / "ds=2026-01-01" / "_LATEST", "2026-01-01", "r", first["evaluated"]
    )
    twin = json.loads((first["refit"] / "manifest.json").read_text())
    del twin["refit_of"]
    (first["refit"] / "manifest.json").write_text(json.dumps(twin))
    apply_retention(str(root), days=5, ds="2026-01-21")
    assert not first["evaluated"].exists()
    assert storage.resolve(str(root), "models", "2026-01-01") == first["refit"]


def test_dry_run_lists_and_deletes_nothing(history, caplog):
    root, runs = history
    with caplog.at_level("INFO", logger="recsys.retention"):
        out = apply_retention(str(root), days=5, ds="2026-01-21", dry_run=True)
    assert str(runs["2026-01-10"]["table"]) in out["deleted"]
    assert all(p.exists() for night in runs.values() for p in night.values())
    assert "would be deleted (dry run)" in caplog.text and " runs deleted" not in caplog.text


def test_zero_days_keeps_only_what_is_in_use_before_the_date(history):
    root, runs = history
    apply_retention(str(root), days=0, ds="2026-01-20")
    assert runs["2026-01-20"]["table"].exists()  # ds == the date: not older
    assert not runs["2026-01-10"]["prepared"].exists()


def test_bad_input_is_one_sentence(history, capsys):
    root, _ = history
    with pytest.raises(RecsysError, match="at least 0"):
        apply_retention(str(root), days=-1)
    (root / "models" / "_LATEST").write_text("{not json")
    assert main(["retention", "--root", str(root), "--days", "3"]) == 2
    err = capsys.readouterr().err
    assert "pointer file" in err and "is damaged (not valid JSON)" in err
    assert "Traceback" not in err


def test_kept_baselines_figures_go_with_their_prepared_run(history):
    """Nothing links to ``baselines/`` runs: those of a kept prepared run stay, the others go by
    the cut-off (and a newer one stays whatever its prepared run)."""
    root, runs = history
    figures = {
        day: _run(root, "baselines", day, "r.0123abcd", {"prepared": night["prepared"]}, False)
        for day, night in runs.items()
    }
    out = apply_retention(str(root), days=5, ds="2026-01-21")
    assert (figures["2026-01-01"] / "manifest.json").is_file()  # its prepared run is in use
    assert str(figures["2026-01-01"]) in out["kept_in_use"]
    assert not figures["2026-01-10"].exists() and str(figures["2026-01-10"]) in out["deleted"]
    assert not (root / "baselines" / "ds=2026-01-10").exists()
    assert (figures["2026-01-20"] / "manifest.json").is_file()
