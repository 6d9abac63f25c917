"""The barrier launcher's pieces that need no cluster: roles, slot checks, failure sentences.

The launcher itself runs on loopback clusters in ``tests/jobs/test_train_submit.py`` (slow).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recsys.errors import RecsysError
from recsys.train.launch import barrier

REPO = Path(__file__).resolve().parents[2]


def test_the_launcher_and_the_train_job_driver_import_no_tensorflow():
    code = (
        "import sys, runpy; sys.argv = ['jobs/train.py', '--help']\n"
        "import recsys.train.launch.barrier, recsys.cli.train\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("tf_config", "chief"),
    [
        (None, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
        ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker"}}, False),
        ({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "chief"}}, True),
    ],
)
def test_only_the_first_worker_or_the_chief_writes(monkeypatch, tf_config, chief):
    pytest.importorskip("tensorflow")
    from recsys.train.launch.strategy import is_chief, worker_count

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_chief() is chief
    assert worker_count() == (1 if tf_config is None else 2)


class FakeContext:
    def __init__(self, **conf: str) -> None:
        self.conf = conf

    def getConf(self):  # noqa: N802 (SparkContext's name)
        return self.conf


def test_a_cap_below_the_workers_fails_at_once_naming_both_numbers(monkeypatch):
    monkeypatch.setattr(barrier, "task_slots", lambda sc: pytest.fail("no wait expected"))
    sc = FakeContext(
        **{"spark.master": "spark://h:7077", "spark.cores.max": "4", "spark.task.cpus": "2"}
    )
    with pytest.raises(RecsysError) as err:
        barrier.wait_for_slots(sc, 3)
    assert str(err.value).startswith(
        "train.workers=3 needs 3 task slots at once (a barrier stage starts all its tasks "
        "together) but the job has 2 (spark.cores.max=4 / spark.task.cpus=2); lower train.workers"
    )
    sc = FakeContext(**{"spark.executor.instances": "2", "spark.executor.cores": "1"})
    assert barrier.slot_ceiling(sc.conf)[0] == 2
    sc.conf["spark.dynamicAllocation.enabled"] = "true"
    assert barrier.slot_ceiling(sc.conf) is None


def test_slots_are_awaited_on_a_cluster_and_not_on_a_local_master(monkeypatch):
    counts = iter([0, 1, 2])
    monkeypatch.setattr(barrier, "task_slots", lambda sc: next(counts))
    monkeypatch.setattr(barrier.time, "sleep", lambda s: None)
    assert barrier.wait_for_slots(FakeContext(**{"spark.master": "spark://h:7077"}), 2) == 2
    monkeypatch.setattr(barrier, "task_slots", lambda sc: 2)
    with pytest.raises(RecsysError, match=r"the job has 2 \(master local\[2\]\)"):
        barrier.wait_for_slots(FakeContext(**{"spark.master": "local[2]"}), 3)
    monkeypatch.setattr(barrier, "task_slots", lambda sc: 1)
    with pytest.raises(RecsysError, match=r"the job has 1 \(registered executors after 0s\)"):
        barrier.wait_for_slots(FakeContext(**{"spark.master": "yarn"}), 2, wait=0)


def test_a_failed_stage_is_told_by_the_worker_s_own_line():
    text = (
        "An error occurred while calling o12.collectAndServe.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: ...\n"
        "RuntimeError: training worker 1 of 2 (attempt 0) exited with status -9; its last lines:\n"
        "epoch 3/20 ...\n"
    )
    assert barrier._stage_error(text, 2) == (
        "training worker 1 of 2 (attempt 0) exited with status -9; its last lines:"
    )
    assert barrier._stage_error("Py4JError: boom\nmore", 2) == (
        "the training stage of 2 worker(s) failed: Py4JError: boom"
    )


def test_a_refit_trains_on_tonight_s_workers_not_the_evaluated_model_s():
    pytest.importorskip("tensorflow")
    from dataclasses import replace

    from recsys.config import Config, TrainConfig
    from recsys.train.step import refit_config

    class Evaluated:
        train = TrainConfig(workers=4, epochs=7)
        best_epoch = 5

    cfg = Config()
    cfg = replace(cfg, train=replace(cfg.train, workers=2))
    assert refit_config(cfg, Evaluated()).train.workers == 2
