"""The run layout: staging, manifest last, atomic pointers, resolve never lists."""

from __future__ import annotations

import json

import pytest

from recsys import storage
from recsys.errors import RecsysError


def test_commit_then_resolve(tmp_path):
    root = str(tmp_path)
    paths = storage.new_run(root, "prepared", "2026-01-02", "manual run:1")
    assert paths.staging.name == "_staging-run=manual_run_1" and paths.staging.is_dir()
    (paths.staging / "data.txt").write_text("x")
    final = storage.commit(paths, {"n": 1})
    assert final == tmp_path / "prepared" / "ds=2026-01-02" / "run=manual_run_1"
    assert not paths.staging.exists()
    assert storage.read_manifest(final) == {"n": 1}
    assert storage.latest(root, "prepared") == final
    assert storage.resolve(root, "prepared", "2026-01-02") == final
    assert storage.resolve(root, "prepared", "2026-01-02", "manual run:1") == final
    pointer = json.loads((tmp_path / "prepared" / "_LATEST").read_text())
    # relative to the root: the root can be moved
    path = "prepared/ds=2026-01-02/run=manual_run_1"
    assert pointer == {"ds": "2026-01-02", "run": "manual_run_1", "path": path}


def test_latest_moves_per_ds_and_overall(tmp_path):
    root = str(tmp_path)
    a = storage.commit(storage.new_run(root, "models", "2026-01-01", "a"), {})
    b = storage.commit(storage.new_run(root, "models", "2026-01-02", "b"), {})
    assert storage.latest(root, "models") == b
    assert storage.resolve(root, "models", "2026-01-01") == a


def test_killed_run_leaves_only_ignored_debris(tmp_path):
    root = str(tmp_path)
    done = storage.commit(storage.new_run(root, "prepared", "2026-01-02", "ok"), {})
    killed = storage.new_run(root, "prepared", "2026-01-02", "killed")
    (killed.staging / "part.parquet").write_text("half")
    assert storage.latest(root, "prepared") == done
    assert storage.resolve(root, "prepared", "2026-01-02") == done


def test_runs_are_immutable(tmp_path):
    storage.commit(storage.new_run(str(tmp_path), "prepared", "2026-01-02", "r"), {})
    with pytest.raises(RecsysError, match="runs are immutable"):
        storage.new_run(str(tmp_path), "prepared", "2026-01-02", "r")


def test_a_run_killed_between_rename_and_manifest_can_be_retried_under_its_id(tmp_path):
    root = str(tmp_path)
    done = storage.commit(storage.new_run(root, "prepared", "2026-01-02", "ok"), {})
    killed = storage.new_run(root, "prepared", "2026-01-02", "retry")
    (killed.staging / "part.parquet").write_text("half")
    killed.staging.rename(killed.final)  # commit's rename happened, its manifest never did
    with pytest.raises(RecsysError, match="not a complete prepared run"):
        storage.resolve(root, "prepared", "2026-01-02", "retry")
    assert storage.latest(root, "prepared") == done
    again = storage.new_run(root, "prepared", "2026-01-02", "retry")
    assert not again.final.exists() and not (again.staging / "part.parquet").exists()
    assert storage.commit(again, {"n": 1}) == killed.final
    assert storage.read_manifest(killed.final) == {"n": 1}


def test_missing_runs_are_clear_errors(tmp_path):
    with pytest.raises(RecsysError, match="run `recsys prepare` first"):
        storage.latest(str(tmp_path), "prepared")
    with pytest.raises(RecsysError, match="no complete models run for ds=2026-01-02"):
        storage.resolve(str(tmp_path), "models", "2026-01-02")
    incomplete = tmp_path / "prepared" / "ds=2026-01-02" / "run=x"
    incomplete.mkdir(parents=True)
    with pytest.raises(RecsysError, match="not a complete prepared run"):
        storage.resolve(str(tmp_path), "prepared", "2026-01-02", "x")
    with pytest.raises(RecsysError, match="YYYY-MM-DD"):
        storage.resolve(str(tmp_path), "prepared", "02/01/2026")


def test_run_ids():
    assert storage.safe_run_id("scheduled__2026-11-23T00:00:00+00:00") == (
        "scheduled__2026-11-23T00_00_00_00_00"
    )
    a, b = storage.new_run_id(), storage.new_run_id()
    assert a != b and a.startswith("20")


def test_a_backfill_moves_its_ds_pointer_but_not_the_tables(tmp_path):
    root = str(tmp_path)
    new = storage.commit(storage.new_run(root, "models", "2026-01-05", "tonight"), {})
    old = storage.commit(storage.new_run(root, "models", "2026-01-04", "backfill"), {})
    assert storage.latest(root, "models") == new  # _LATEST names the newest ds
    assert storage.resolve(root, "models", "2026-01-04") == old  # the backfill is committed
    again = storage.commit(storage.new_run(root, "models", "2026-01-05", "tonight.try2"), {})
    assert storage.latest(root, "models") == again  # a re-run of the same ds moves it
    forced = storage.new_run(root, "models", "2026-01-03", "forced")
    assert storage.commit(forced, {}, backwards=True) == storage.latest(root, "models")


def test_advance_latest_says_whether_it_moved(tmp_path):
    table = tmp_path / "recommendations"
    table.mkdir()
    assert storage.advance_latest(table, "2026-01-02", "a", table / "a")
    assert not storage.advance_latest(table, "2026-01-01", "b", table / "b")
    assert json.loads((table / "_LATEST").read_text())["run"] == "a"
    assert storage.advance_latest(table, "2026-01-02", "c", table / "c")


@pytest.mark.parametrize(
    "ds", ["20261203", "2026-1-3", "2026-12-03T00:00", "2026-02-30", "٢٠٢٦-١٢-٠٣"]
)
def test_ds_is_strictly_yyyy_mm_dd(ds):
    # Other spellings of a day would give it a second ds= folder (Python 3.11 parses "20261203").
    with pytest.raises(RecsysError, match=r"--ds must be a date as YYYY-MM-DD, got"):
        storage.check_ds(ds)
    assert storage.check_ds("2026-12-03") == "2026-12-03"
