"""The environment faults on real devices instead of injected errors: a read-only mount and a
full disk (a small tmpfs). Needs a machine that lets the tests mount one (root with
CAP_SYS_ADMIN); skipped elsewhere. Each mount is unmounted by the test that made it."""

from __future__ import annotations

import subprocess

import pytest

from recsys import storage
from recsys.cli import main

WRITERS = [
    ["prepare", "--input", "x.csv"],
    ["train"],
    ["gate"],
    ["score"],
    ["publish"],
    ["retention"],
]


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MB tmpfs at ``tmp_path/mnt``."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()})")
    try:
        yield mnt
    finally:
        # Lazily: Spark's JVM may still hold a file it failed to write there.
        subprocess.run(["umount", "--lazy", str(mnt)], check=True)


@pytest.mark.parametrize("argv", WRITERS, ids=[a[0] for a in WRITERS])
def test_a_read_only_mount(tmpfs, capsys, no_heavy_start, argv):
    (tmpfs / "var").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    root = tmpfs / "var"
    capsys.readouterr()
    assert main([*argv, "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"recsys {argv[0]}: error: storage root {root} is not usable: {root} is not writable "
        "(Read-only file system); make the storage root writable or pass another --root\n"
    )


@pytest.mark.slow
def test_a_disk_that_fills_while_spark_writes(spark, tmpfs, tmp_path, capsys):
    """96 KB left: the root's probe passes, Spark's writes fail; one sentence, nothing left."""
    log = tmp_path / "log.csv"
    rows = [f"{u},{i},{1 + (u * i) % 5},{1000 + u * 40 + i}" for u in range(60) for i in range(30)]
    log.write_text("user_id,item_id,rating,timestamp\n" + "\n".join(rows) + "\n")
    fill = tmpfs / "fill"
    subprocess.run(["dd", "if=/dev/zero", f"of={fill}", "bs=1k", "count=4000"], check=True,
                   capture_output=True)  # fmt: skip
    root = tmpfs / "var"
    capsys.readouterr()
    argv = ["prepare", "--input", str(log), "--root", str(root), "--ds", "2026-05-01"]
    assert main([*argv, "--run", "full", "--split", "random"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("recsys prepare: error: ") and "o space left on" in err, err
    assert "pass another --root" in err
    assert not list(root.rglob("_staging-*")) and not list(root.rglob("run=full"))
    assert not (root / "prepared" / storage.LATEST).exists()
