"""A hostile environment: a root that is a file, unwritable or full; damaged pointers and
manifests. Every command ends in one sentence naming the path and what to do, exit status 2,
before Spark or training starts, and yesterday's table stays published."""

from __future__ import annotations

import errno
import json

import pytest
from faultkit import (
    assert_published_state_untouched,
    restored,
    run,
)

from recsys import storage

COMMANDS = ("prepare", "train", "refit", "evaluate", "gate", "score", "publish", "retention",
            "recommend", "summary")  # fmt: skip
WRITERS = ("prepare", "train", "refit", "gate", "score", "publish", "retention")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_root_that_is_a_file(published, tmp_path, capsys, no_heavy_start, command):
    file = tmp_path / "var"
    file.write_text("not a folder")
    code, err = run(command, published, capsys, root=str(file))
    assert code == 2
    name = "train" if command == "refit" else command
    assert err == (
        f"recsys {name}: error: storage root {file} is a file, not a folder; pass --root (or set "
        "RECSYS_ROOT to) a folder"
    )


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (errno.ENOSPC, "no space left on the device of {root}; free space there (`recsys "
                       "retention` deletes old runs) or pass another --root, then re-run"),
        (errno.EACCES, "{root} is not writable (Permission denied); make the storage root "
                       "writable or pass another --root"),
        (errno.EROFS, "{root} is not writable (Read-only file system); make the storage root "
                      "writable or pass another --root"),
    ],
    ids=["full disk", "permission denied", "read-only"],
)  # fmt: skip
@pytest.mark.parametrize("command", WRITERS)
def test_a_root_that_cannot_be_written(
    published, capsys, monkeypatch, no_heavy_start, command, code, says
):
    import os

    def fail(path, data):
        raise OSError(code, os.strerror(code), str(path))

    before = published.pointers()
    monkeypatch.setattr(storage, "_write_bytes", fail)
    status, err = run(command, published, capsys)
    monkeypatch.undo()
    assert status == 2 and "\n" not in err
    root = storage.local_root(published.root)
    name = "train" if command == "refit" else command
    sentence = says.format(root=root)
    assert err == f"recsys {name}: error: storage root {root} is not usable: {sentence}"
    assert_published_state_untouched(published, before, capsys)


def test_a_disk_that_fills_during_the_step_leaves_nothing(published, capsys, monkeypatch):
    """The probe passes, the gate's decision cannot be written: no run is left half-written."""
    import os

    real = storage._write_bytes

    def full(path, data):
        if path.name.startswith(".recsys-probe"):
            return real(path, data)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    before = published.pointers()
    monkeypatch.setattr(storage, "_write_bytes", full)
    for command in ("gate", "publish"):
        status, err = run(command, published, capsys)
        assert status == 2 and "no space left on the device of" in err and "\n" not in err
        if command == "gate":  # the run folder went with its manifest
            gates = storage.local_root(published.root) / "gates"
            assert not [p for p in gates.rglob("run=*")], list(gates.rglob("*"))
    monkeypatch.undo()
    assert_published_state_untouched(published, before, capsys)


# (table, damaged pointer, what the sentence says, the commands that read that pointer)
POINTERS = [
    ("prepared", "{not json", "not valid JSON", ("prepare", "train", "retention", "summary")),
    ("models", '["ds", "run"]', "a JSON list, not an object with ds, run and path",
     ("train", "evaluate", "gate", "score", "retention", "summary")),
    ("recommendations", '{"ds": "2026-05-01"}', "no text 'run'",
     ("train", "gate", "score", "publish", "recommend", "summary", "retention")),
    ("recommendations", '{"ds": "1 May", "run": "scored", "path": "/x"}',
     "ds '1 May' is not a date as YYYY-MM-DD", ("publish", "recommend")),
    ("models", '{"ds": "2026-05-01", "run": "../../etc", "path": "/x"}',
     "run '../../etc' is not a run id", ("evaluate", "score")),
]  # fmt: skip
WRITER = {"prepared": "prepare", "models": "train", "recommendations": "publish"}


@pytest.mark.parametrize(
    ("table", "content", "problem", "command"),
    [(t, c, p, cmd) for t, c, p, cmds in POINTERS for cmd in cmds],
)
def test_a_damaged_pointer(published, capsys, no_heavy_start, table, content, problem, command):
    pointer = storage.local_root(published.root) / table / storage.LATEST
    before = published.pointers()
    with restored(pointer):
        pointer.write_text(content)
        code, err = run(command, published, capsys)
    assert code == 2
    assert err == (
        f"recsys {command}: error: pointer file {pointer} is damaged ({problem}); delete it and "
        f"re-run `recsys {WRITER[table]}` to write it again"
    )
    assert_published_state_untouched(published, before, capsys)


def _without(key):
    return lambda m: {k: v for k, v in m.items() if k != key}


# (table, damage, what the sentence says, the commands that read that manifest)
MANIFESTS = [
    ("models", lambda m: [m], "is not a models manifest: it holds a list; re-run `recsys train`",
     ("refit", "evaluate", "gate", "score", "summary")),
    ("models", _without("model_version"),
     "has no 'model_version': it is not a complete models manifest; re-run `recsys train`",
     ("refit", "evaluate", "gate", "score", "summary")),
    ("prepared", lambda m: {**m, "counts": {"train": "many"}},
     "has counts.train = 'many', which is not an integer: it is not a valid prepared manifest; "
     "re-run `recsys prepare`", ("train", "evaluate", "gate", "score", "publish")),
    ("recommendations", lambda m: {**m, "top_n": "5"},
     "has top_n = '5', which is not an integer: it is not a valid recommendations manifest; "
     "re-run `recsys score`", ("publish", "recommend", "summary", "gate")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "damage", "says", "command"),
    [(t, d, s, cmd) for t, d, s, cmds in MANIFESTS for cmd in cmds],
)
def test_a_damaged_manifest(published, capsys, no_heavy_start, table, damage, says, command):
    folder = {"prepared": published.prepared, "models": published.model}.get(table, published.table)
    path = folder / storage.MANIFEST
    before = published.pointers()
    with restored(path):
        path.write_text(json.dumps(damage(json.loads(path.read_text()))))
        code, err = run(command, published, capsys)
    name = "train" if command == "refit" else command
    assert code == 2
    assert err == f"recsys {name}: error: {path} {says}"
    assert_published_state_untouched(published, before, capsys)


def test_a_damaged_model_manifest_stops_retention_from_guessing(published, capsys):
    """Retention follows manifest links to keep what the published table needs: a manifest it
    cannot read stops it rather than deleting what it could not see was needed."""
    path = published.model / storage.MANIFEST
    before = published.pointers()
    with restored(path):
        path.write_text("[1, 2]")
        code, err = run("retention", published, capsys)
    assert code == 2
    assert err == (
        f"recsys retention: error: {path} holds a JSON list, not a manifest; re-run the step "
        "that wrote it"
    )
    assert_published_state_untouched(published, before, capsys)
