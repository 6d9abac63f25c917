"""Odd inputs: dates of other spellings for every date option, a refused step's staging folder,
retention's dry run. Each ends in one sentence (exit 2) or says what it would do, and yesterday's
table stays published."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from faultkit import DS, assert_published_state_untouched

from recsys import storage
from recsys.cli import main

# Every date option of every command (the same validator: storage.check_ds).
DATE_OPTIONS = [
    ("prepare", "--ds", ["--input", "x.csv"]),
    ("train", "--ds", []),
    ("train", "--prepared-ds", []),
    ("train", "--refit-ds", ["--refit"]),
    ("evaluate", "--ds", []),
    ("gate", "--ds", []),
    ("gate", "--model-ds", []),
    ("score", "--ds", []),
    ("score", "--model-ds", []),
    ("publish", "--ds", []),
    ("retention", "--ds", []),
    ("nightly", "--ds", []),
    ("demo", "--ds", ["--offline"]),
]


@pytest.mark.parametrize("value", ["20260502", "2026-5-2", "2026-02-30", "2026-05-02T00:00"])
@pytest.mark.parametrize(("command", "option", "extra"), DATE_OPTIONS)
def test_every_date_option_is_strictly_yyyy_mm_dd(
    published, capsys, no_heavy_start, command, option, extra, value
):
    before = published.pointers()
    capsys.readouterr()
    code = main([command, *extra, option, value, "--root", published.root])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"recsys {command}: error: {option} must be a date as YYYY-MM-DD, got {value!r}"
    assert_published_state_untouched(published, before, capsys)


def test_a_refused_prepare_leaves_no_staging_folder_but_keeps_its_quarantine(
    published, tmp_path, capsys
):
    rows = ["user_id,item_id,rating,timestamp"] + [f"{u},{u},4,{u}" for u in range(8)]
    rows += [f"{u},{u},lots,{u}" for u in range(8, 12)]  # a third of the rows are bad
    log = tmp_path / "bad.csv"
    log.write_text("\n".join(rows) + "\n")
    before = published.pointers()
    capsys.readouterr()
    argv = ["prepare", "--input", str(log), "--ds", "2026-05-03", "--run", "bad"]
    code = main([*argv, "--root", published.root])
    err = capsys.readouterr().err.strip()
    ds_dir = storage.local_root(published.root) / "prepared" / "ds=2026-05-03"
    kept = ds_dir / "_rejected-run=bad" / "quarantine"
    assert code == 2
    assert err == (
        f"recsys prepare: error: 4 of 12 rows (33.33%) of {log} were rejected (bad_rating=4), "
        f"above prepare.max_reject_fraction=1.00%; see the quarantine in {kept}"
    )
    assert sorted(p.name for p in ds_dir.iterdir()) == ["_rejected-run=bad"]
    assert pq.read_table(kept).num_rows == 4
    shutil.rmtree(ds_dir)  # the shared root as it was (retention would remove it in time)
    assert_published_state_untouched(published, before, capsys)


def test_retention_dry_run_says_would_delete_and_deletes_nothing(published, capsys):
    old = storage.local_root(published.root) / "gates" / f"ds={DS}" / "run=old"
    old.mkdir(parents=True)
    before = published.pointers()
    try:
        capsys.readouterr()
        argv = ["retention", "--root", published.root, "--days", "3", "--ds", "2026-05-10"]
        assert main([*argv, "--dry-run"]) == 0
        out = capsys.readouterr().out
        assert out.splitlines() == [
            f"would delete {old}",
            # prepared, models, recommendations and the prepared run's kept baselines
            "would delete 1 runs older than 2026-05-07 (0.0 MB); kept 4 old runs in use",
        ]
        assert "deleted" not in out and old.is_dir()
    finally:
        old.rmdir()
    assert_published_state_untouched(published, before, capsys)
