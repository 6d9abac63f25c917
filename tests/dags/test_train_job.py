"""The DAG's Spark tasks: the jobs/*.py command line each builds from what upstream tasks handed
over (``inputs``) and the params, what it hands on, and the status that fails it.

The gate, refit and score tasks receive ``{"model_ds", "model_run"}`` from train (and refit)
exactly as when train and refit ran ``recsys train`` on the Airflow worker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "dags"))
recsys_operators = pytest.importorskip("recsys_operators")

PARAMS = {
    "move_latest_backwards": False,
    "train_workers": 2,
    "train_executor_cores": 3,
    "train_executor_memory": "1g",
    "train_memory_overhead": "4g",
    "spark_driver_memory": "2g",
    "refit_mode": "continue",
    "warm_start": True,
    "train_overrides": ["train.epochs=10"],
    "model": "biased-mf",
    "objective": "ranking",
    "refit": True,
    "top_n": 10,
    "similar_items": 5,
    "serve_extra": 3,
    "split": "leave-last",
    "split_gap": "1d",
    "drift_min_share": 0.5,
}
PATHS = {"root": "/data/var", "ds": "2026-05-01", "run": "night", "input": "/data/in"}
PREPARED = {"ds": "2026-05-01", "run": "night"}
TRAINED = {"model_ds": "2026-05-01", "model_run": "night.try2"}


def test_train_submits_the_recsys_train_options_and_hands_over_the_model():
    job = recsys_operators.TrainJob(inputs={"paths": PATHS, "prepared": PREPARED})
    assert job.command(PARAMS) == [
        "--root", "/data/var", "--ds", "2026-05-01",
        "--set", "train.workers=2", "--set", "move_latest_backwards=false",
        "--set", "train.warm_start=true", "--set", "train.epochs=10",
        "--prepared-ds", "2026-05-01", "--prepared-run", "night",
        "--model", "biased-mf", "--objective", "ranking",
    ]  # fmt: skip
    assert job.task_id == "train" and job.application.endswith("jobs/train.py")
    assert job.handover("2026-05-01", "night") == {"model_ds": "2026-05-01", "model_run": "night"}
    sizes = job.sizes(PARAMS)
    assert sizes["spark.task.cpus"] == sizes["spark.executor.cores"] == "3"
    assert sizes["spark.cores.max"] == "6"


def test_refit_refits_the_model_train_handed_over():
    job = recsys_operators.RefitJob(inputs={"paths": PATHS, "trained": TRAINED})
    assert job.task_id == "refit" and job.suffix == "-refit"
    args = job.command(PARAMS)
    assert args[:5] == ["--refit", "--refit-ds", "2026-05-01", "--refit-run", "night.try2"]
    assert "train.refit_mode=continue" in args and "train.workers=2" in args
    assert "move_latest_backwards=false" in args


@pytest.mark.parametrize(
    ("refitted", "served"),
    [({"model_ds": "2026-05-01", "model_run": "night-refit"}, "night-refit"), (None, "night.try2")],
    ids=["after the refit", "refit skipped"],
)
def test_score_serves_the_refit_or_when_it_was_skipped_the_trained_model(refitted, served):
    inputs = {"paths": PATHS, "trained": TRAINED, "refitted": refitted}
    args = recsys_operators.ScoreJob(inputs=inputs).command(PARAMS)
    assert args[args.index("--model-run") + 1] == served
    assert args[args.index("--top") + 1] == "10" and "--similar-items" in args
    assert args[args.index("--extra") + 1] == "3"


@pytest.mark.parametrize(
    ("split", "gap"), [("return", ["--gap", "12h"]), ("leave-last", [])], ids=["return", "other"]
)
def test_prepare_passes_the_gap_only_to_the_return_split(split, gap):
    params = {**PARAMS, "split": split, "split_gap": "12h"}
    args = recsys_operators.PrepareJob(inputs={"paths": PATHS}).command(params)
    at = args.index("--split")
    assert args[at : at + 2 + len(gap)] == ["--split", split, *gap]
    assert ("--gap" in args) == bool(gap)


def test_prepare_and_every_committing_step_spell_move_latest_backwards_one_way():
    params = {**PARAMS, "move_latest_backwards": True, "split": "leave-last"}
    params["drift_min_share"] = 0.5
    prepare = recsys_operators.PrepareJob(inputs={"paths": PATHS}).command(params)
    assert prepare[:2] == ["--input", "/data/in"]
    assert (
        prepare[-2:]
        == recsys_operators.moves(params)
        == [
            "--set",
            "move_latest_backwards=true",
        ]
    )


@pytest.mark.parametrize(
    ("written", "status"),
    [({"status": 2, "error": "bad input"}, 2), ({"status": 3, "error": "refused"}, 3), (None, 1)],
)
def test_a_failed_job_fails_with_the_status_it_wrote(tmp_path, monkeypatch, written, status):
    """The status comes from the job's own result file (the provider's public interface has no
    exit code): 2 and 3 fail without retry, anything else (nothing written: a crash) retries."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    monkeypatch.delenv("RECSYS_REPORT", raising=False)
    result = tmp_path / "result.json"
    if written:
        result.write_text(json.dumps(written))
    kind = AirflowFailException if status in (2, 3) else AirflowException
    with pytest.raises(kind) as failed:
        recsys_operators.finish("score", None, result, 0.0)
    assert str(failed.value) == (written or {}).get("error", f"score exited with status {status}")
    assert recsys_operators.finish("score", 0, tmp_path / "none.json", 0.0) == {}
