"""A scoring run killed mid-write leaves only debris that no reader sees.

A first table is scored and published. A second ``recsys score`` of the same ds runs as its own
process group (Python driver, JVM, Python workers) and gets SIGKILL while Spark is writing its
part files under the staging name. The published table, the pointers and every reader must be
unaffected, and a re-run of the ds must succeed and publish: under a fresh run id, and under the
killed run's own id (what a retry of the nightly DAG's score task does).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sparkproc import BIN, spark_env, tail

from recsys import storage
from recsys.errors import RecsysError

pytest.importorskip("tensorflow")

TRAIN_DS, DS = "2026-03-01", "2026-03-02"
TOP = 5
# The job repartitions its table to spark.shuffle_partitions before writing, one file per
# partition: on ~300 rows, 200 tiny tasks keep the write stage busy for seconds (about 9 s on a
# busy 2-core machine), a wide window to see part files appear and kill the job before it
# commits. Spark's own shuffles stay at 2 partitions (spark.conf), so only the write is slowed.
KILL_CONFIG = """\
spark:
  master: local[2]
  driver_memory: 1g
  shuffle_partitions: 200
  conf:
    spark.sql.shuffle.partitions: "2"
"""
KILL_TIMEOUT = 180  # a safety net: the job reaches the write in 15-40 s on a busy machine


@pytest.fixture(scope="module")
def published(spark, tmp_path_factory):
    """A prepared run, a model (2 epochs) and one scored table, published: built in-process."""
    from scoredata import trained_root

    from recsys.score.job import run_score
    from recsys.score.publish import publish

    cfg = trained_root(tmp_path_factory.mktemp("score-kill"), TRAIN_DS, seed=1)
    first = run_score(cfg, DS, run="first", n=TOP).path
    publish(cfg.root, DS)
    assert storage.latest(cfg.root, "recommendations") == first
    return cfg, first


def _part_files(folder: Path) -> list[Path]:
    """Part files anywhere under ``folder`` (task attempts and committed tasks alike); Spark
    renames and deletes as we walk, which ``os.walk`` tolerates."""
    return [Path(d, f) for d, _, files in os.walk(folder) for f in files if f.startswith("part-")]


def _group_alive(pgid: int) -> list[int]:
    """Processes of a process group that are still running (zombies are dead)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def _manifests(root: str) -> list[Path]:
    return sorted((Path(root) / "recommendations").rglob(storage.MANIFEST))


def _pointer(path: Path) -> str:
    return json.loads(path.read_text())["run"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_killed_score_leaves_the_published_table(published, tmp_path):
    from recsys.score.job import run_score
    from recsys.score.publish import publish, validate

    cfg, first = published
    ds_dir = first.parent
    staging = ds_dir / "_staging-run=killed"
    log = tmp_path / "score.log"
    config = tmp_path / "kill.yaml"
    config.write_text(KILL_CONFIG)
    cmd = [
        str(BIN / "recsys"),
        "score",
        "--root",
        cfg.root,
        "--ds",
        DS,
        "--run",
        "killed",
        "--top",
        str(TOP),
        "--config",
        str(config),
    ]
    started = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=spark_env(None),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: driver, JVM and Python workers
        )
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"score exited ({proc.returncode}) before the kill:\n{_log(log)}")
            parts = _part_files(staging / "table")
            if parts:
                manifests_at_kill = _manifests(cfg.root)
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if time.monotonic() - started > KILL_TIMEOUT:
                pytest.fail(f"no part file under {staging} in {KILL_TIMEOUT}s:\n{_log(log)}")
            time.sleep(0.05)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _group_alive(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(proc.pid), "the JVM or a Python worker survived SIGKILL"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    print(f"killed after {time.monotonic() - started:.1f}s with {len(parts)} part file(s)")

    # Killed mid-write: the write job never committed (no _SUCCESS), the staging folder was never
    # renamed, and the only manifest then and now is the first run's.
    assert manifests_at_kill == [first / storage.MANIFEST]
    assert (staging / "table").is_dir() and not (staging / "table" / "_SUCCESS").exists()
    assert not (ds_dir / "run=killed").exists()
    assert _manifests(cfg.root) == [first / storage.MANIFEST]

    # The pointers and every reader still see the first run only.
    assert _pointer(ds_dir.parent / storage.LATEST) == "first"
    assert _pointer(ds_dir / storage.LATEST) == "first"
    assert storage.latest(cfg.root, "recommendations") == first
    assert storage.resolve(cfg.root, "recommendations", DS) == first
    with pytest.raises(RecsysError, match="is not a complete recommendations run"):
        storage.resolve(cfg.root, "recommendations", DS, "killed")
    assert validate(first)["users"] > 0

    # A re-run of the ds under a fresh run id succeeds, and publishing it moves _LATEST.
    rerun = run_score(cfg, DS, run="rerun", n=TOP)
    assert storage.resolve(cfg.root, "recommendations", DS) == rerun.path
    out = publish(cfg.root, DS)
    assert out["run"] == "rerun" and out["users"] == validate(first)["users"]
    assert storage.latest(cfg.root, "recommendations") == rerun.path
    assert _manifests(cfg.root) == sorted([first / storage.MANIFEST, rerun.path / storage.MANIFEST])
    assert staging.exists()  # the debris stays, and nobody reads it

    # The nightly DAG passes its run id to `recsys score`, so Airflow's retry of a killed task
    # re-runs the *same* run id over the dead attempt's staging folder: that must work too.
    retry = run_score(cfg, DS, run="killed", n=TOP)
    assert retry.path == ds_dir / "run=killed" and not staging.exists()
    assert publish(cfg.root, DS)["run"] == "killed"
    assert storage.latest(cfg.root, "recommendations") == retry.path


def _log(path: Path) -> str:
    return tail(path.read_text(errors="replace"))
