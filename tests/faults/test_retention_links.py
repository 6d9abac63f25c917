"""Issue 27, case 5: retention never follows a symbolic link out of the root and deletes only
the run folders it recognises."""

from __future__ import annotations

from recsys.cli import main


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_retention_leaves_a_linked_ds_folder_and_unknown_folders_alone(tmp_path, capsys):
    root = tmp_path / "var"
    elsewhere = tmp_path / "elsewhere"
    for name in ("run=a", "photos", "run=b/part.parquet"):
        (elsewhere / name).parent.mkdir(parents=True, exist_ok=True)
        (elsewhere / name).mkdir() if "." not in name else (elsewhere / name).write_text("x")
    before = _tree(elsewhere)
    table = root / "recommendations"
    table.mkdir(parents=True)
    (table / "ds=2020-01-01").symlink_to(elsewhere, target_is_directory=True)
    old = table / "ds=2020-01-02"
    for name in ("run=old", "_staging-run=killed", "notes"):
        (old / name).mkdir(parents=True)
    (old / "run=linked").symlink_to(elsewhere / "run=a", target_is_directory=True)
    capsys.readouterr()
    argv = ["retention", "--root", str(root), "--days", "14", "--ds", "2026-05-10"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert _tree(elsewhere) == before  # the link's target, whole
    assert (table / "ds=2020-01-01").is_symlink()
    assert sorted(p.name for p in old.iterdir()) == ["notes", "run=linked"]
    assert out.splitlines() == [
        f"deleted {old / '_staging-run=killed'}",
        f"deleted {old / 'run=old'}",
        "deleted 2 runs older than 2026-04-26 (0.0 MB); kept 0 old runs in use",
    ]
