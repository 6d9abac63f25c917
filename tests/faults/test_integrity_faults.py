"""Steps refuse inputs that differ from their manifests: a prepared run that lost a Parquet file,
a model whose artifacts changed. One sentence with the run and both figures, exit status 2,
nothing committed, yesterday's table still published."""

from __future__ import annotations

import pytest
from faultkit import assert_published_state_untouched, restored, run

from recsys import integrity

READERS_OF_PREPARED = ("train", "refit", "evaluate", "gate", "score", "publish")


@pytest.mark.parametrize("command", READERS_OF_PREPARED)
def test_a_prepared_run_that_lost_a_parquet_file(published, capsys, no_heavy_start, command):
    split = published.prepared / "ratings" / "split=train"
    lost = sorted(integrity.data_files(split))[0]
    files = integrity.data_files(published.prepared / "ratings")
    before = published.pointers()
    with restored(split):
        size = (split / lost).stat().st_size
        (split / lost).unlink()
        code, err = run(command, published, capsys)
    name = "train" if command == "refit" else command
    total = sum(files.values())
    assert code == 2
    assert err == (
        f"recsys {name}: error: prepared run {published.prepared} does not match its manifest: "
        f"ratings/ holds {len(files) - 1} file(s) of {total - size:,} bytes, the manifest "
        f"records {len(files)} file(s) of {total:,} bytes (ratings/split=train/{lost} is "
        "missing); re-run `recsys prepare` for ds=2026-05-01 (or pass an intact prepared run)"
    )
    assert_published_state_untouched(published, before, capsys)


@pytest.mark.parametrize(
    ("artifact", "command"),
    [("arrays.npz", c) for c in ("refit", "evaluate", "gate", "score")]
    + [("model.keras", "refit")],
)
def test_a_model_whose_artifact_changed(published, capsys, no_heavy_start, artifact, command):
    path = published.model / artifact
    before = published.pointers()
    with restored(path):
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, other content
        path.write_bytes(bytes(data))
        found = integrity.sha256(path)[:12]
        code, err = run(command, published, capsys)
    name = "train" if command == "refit" else command
    assert code == 2
    assert err.startswith(
        f"recsys {name}: error: model run {published.model}: {artifact} has sha256 {found}... "
        f"({len(data):,} bytes), its manifest records "
    )
    assert err.endswith(
        "...; the artifact was changed or damaged: re-run `recsys train` for ds=2026-05-01 (or "
        "pass an intact model run)"
    )
    assert_published_state_untouched(published, before, capsys)


def test_old_manifests_are_still_read_and_their_rows_checked(published, capsys):
    """A prepared manifest written before file records existed: rows are checked, not files."""
    import json

    from recsys import storage

    path = published.prepared / storage.MANIFEST
    split = published.prepared / "ratings" / "split=test"
    with restored(path, split):
        manifest = json.loads(path.read_text())
        path.write_text(json.dumps({k: v for k, v in manifest.items() if k != "files"}))
        code, err = run("evaluate", published, capsys)
        assert code == 0, err
        for f in integrity.data_files(split):
            (split / f).unlink()
        code, err = run("evaluate", published, capsys)
    assert code == 2
    assert f"prepared run {published.prepared} holds 0 test rows but its manifest records" in err


def test_a_table_whose_rows_differ_from_its_manifest_is_not_published(published, capsys):
    """The table passes every check of its content but is not the one score recorded."""
    import json

    from recsys import storage

    path = published.table / storage.MANIFEST
    before = published.pointers()
    with restored(path):
        manifest = json.loads(path.read_text())
        rows = manifest["rows"]
        path.write_text(json.dumps({**manifest, "rows": rows + 1}))
        code, err = run("publish", published, capsys)
    assert code == 2
    assert err == (
        f"recsys publish: error: recommendations run {published.table} holds {rows:,} rows but "
        f"its manifest records {rows + 1:,}; re-run `recsys score` for ds=2026-05-01; it was "
        "not published"
    )
    assert_published_state_untouched(published, before, capsys)
