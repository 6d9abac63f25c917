"""Issue 27, cases 6-9: a moved root still answers (runs are named relative to the root; old
manifests with absolute paths still read), a user id beyond int64 is no user, a ds years ahead
is refused unless forced, and a task's usage error reaches `recsys nightly` as its own line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from faultkit import DS, assert_published_state_untouched

from recsys import storage
from recsys.cli import main


def test_a_moved_root_answers_recommend_and_summary(published, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(published.root, moved, ignore=shutil.ignore_patterns("airflow"))
    table = json.loads(
        (storage.latest(str(moved), "recommendations") / "manifest.json").read_text()
    )
    assert not table["model"]["path"].startswith("/")  # relative to the root
    pointer = json.loads((moved / "recommendations" / storage.LATEST).read_text())
    assert pointer["path"] == f"recommendations/ds={DS}/run=scored"
    capsys.readouterr()
    assert main(["recommend", "--root", str(moved), "--user", published.user]) == 0
    assert f"user {published.user}" in capsys.readouterr().out
    assert main(["summary", "--root", str(moved)]) == 0
    assert str(moved / "models") in capsys.readouterr().out


def test_an_old_manifest_with_absolute_paths_of_another_root_still_reads(
    published, tmp_path, capsys
):
    moved = tmp_path / "moved"
    shutil.copytree(published.root, moved, ignore=shutil.ignore_patterns("airflow"))
    manifest = storage.latest(str(moved), "recommendations") / "manifest.json"
    data = json.loads(manifest.read_text())
    for key in ("model", "prepared"):  # as written before: absolute, under the old root
        data[key]["path"] = "/gone/var/" + data[key]["path"]
    manifest.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["summary", "--root", str(moved)]) == 0
    assert main(["recommend", "--root", str(moved), "--user", published.user]) == 0
    argv = ["retention", "--root", str(moved), "--days", "0", "--ds", "2026-05-20"]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete 0 runs" in out  # the model and prepared run it names are kept


def test_a_user_id_beyond_int64_is_no_user_not_an_overflow(published, capsys):
    capsys.readouterr()
    code = main(["recommend", "--root", published.root, "--user", "12345678901234567890123"])
    err = capsys.readouterr().err.strip()
    rows = storage.read_manifest(published.table)["rows"]
    assert code == 2
    assert err == (
        "recsys recommend: error: user '12345678901234567890123' is not in the published "
        f"table {published.table} ({rows:,} rows); check the id"
    )


@pytest.mark.parametrize("command", ["score", "publish", "retention"])
def test_a_ds_years_ahead_is_refused_unless_forced(
    published, capsys, no_heavy_start, monkeypatch, command
):
    monkeypatch.setattr(storage, "today_utc", lambda: "2026-12-08")
    before = published.pointers()
    capsys.readouterr()
    code = main([command, "--root", published.root, "--ds", "2030-01-01"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"recsys {command}: error: --ds 2030-01-01 is 1,120 days after today (2026-12-08, UTC), "
        "more than max_days_ahead=2; pass the date you meant, or force it with --set "
        "max_days_ahead=1120 (or RECSYS_MAX_DAYS_AHEAD=1120)"
    )
    assert_published_state_untouched(published, before, capsys)
    if command == "retention":  # two days ahead goes through, and so does a forced date
        argv = ["retention", "--root", published.root, "--days", "10000", "--dry-run"]
        assert main([*argv, "--ds", "2026-12-10"]) == 0
        monkeypatch.setenv("RECSYS_MAX_DAYS_AHEAD", "2000")
        assert main([*argv, "--ds", "2030-01-01"]) == 0


def test_a_task_s_usage_error_is_handed_over_as_its_own_sentence(tmp_path, monkeypatch, capsys):
    import runpy

    from recsys.nightly import outcome

    train_job = runpy.run_path(str(Path(__file__).parents[2] / "jobs" / "train.py"))["main"]

    result = tmp_path / "result.json"
    monkeypatch.setenv("RECSYS_RESULT_FILE", str(result))
    with pytest.raises(SystemExit) as exited:
        train_job(["--set", "train.epochs=1", "--root"])
    assert exited.value.code == 2
    said = json.loads(result.read_text())
    assert said["status"] == 2
    assert said["error"] == "jobs/train.py: error: argument --root: expected one argument"
    assert said["error"] in capsys.readouterr().err
    # What `recsys nightly` prints for the failed task: that sentence, not only its status.
    entry = {"task": "train", "status": 2, "error": said["error"]}
    assert outcome([], [entry], 1) == (False, said["error"])
