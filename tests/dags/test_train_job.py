"""The DAG's train and refit tasks: the jobs/train.py command line they build, what they hand on.

The evaluate, gate, refit and score tasks read ``{"model_ds", "model_run"}`` from XCom exactly as
when train and refit ran ``recsys train`` on the Airflow worker.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))
recsys_operators = pytest.importorskip("recsys_operators")

PARAMS = {
    "move_latest_backwards": False,
    "train_workers": 2,
    "refit_mode": "continue",
    "warm_start": True,
    "train_overrides": ["train.epochs=10"],
    "model": "biased-mf",
    "objective": "ranking",
    "refit": True,
}
XCOM = {
    ("source", "root"): "/data/var",
    ("prepare", None): {"ds": "2026-05-01", "run": "night"},
    ("train", None): {"model_ds": "2026-05-01", "model_run": "night.try2"},
}


class FakeTI:
    def xcom_pull(self, task_ids: str, key: str | None = None):
        return XCOM[(task_ids, key)]


def test_train_submits_the_recsys_train_options_and_hands_over_the_model():
    job = recsys_operators.RecsysTrainJob()
    args = job.more_args({"params": PARAMS, "ti": FakeTI()}, "2026-05-01", "night")
    assert args == [
        "--root", "/data/var", "--ds", "2026-05-01",
        "--set", "train.warm_start=true", "--set", "train.workers=2",
        "--set", "move_latest_backwards=false", "--set", "train.epochs=10",
        "--prepared-ds", "2026-05-01", "--prepared-run", "night",
        "--model", "biased-mf", "--objective", "ranking",
    ]  # fmt: skip
    assert job.task_id == "train" and job.application.endswith("jobs/train.py")
    assert job.handover("2026-05-01", "night") == {"model_ds": "2026-05-01", "model_run": "night"}
    assert job.conf["spark.task.cpus"] == "{{ params.train_executor_cores }}"


def test_refit_refits_the_trained_model_or_serves_it_when_off():
    job = recsys_operators.RecsysTrainJob(refit=True)
    assert job.task_id == "refit" and job.suffix == "-refit"
    args = job.more_args({"params": PARAMS, "ti": FakeTI()}, "2026-05-01", "night-refit")
    assert args[:5] == ["--refit", "--refit-ds", "2026-05-01", "--refit-run", "night.try2"]
    assert "train.refit_mode=continue" in args and "train.workers=2" in args
    off = {"params": {**PARAMS, "refit": False}, "ti": FakeTI()}
    assert job.execute(off) == XCOM[("train", None)]  # nothing submitted
