"""Refit: the evaluated model's settings, its best epoch count, every split of its data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys import storage
from recsys.artifact import Scorer
from recsys.cli import main
from recsys.config import load_config


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory, synthetic_run):
    from recsys.train.trainer import run_train

    root = synthetic_run(tmp_path_factory.mktemp("refit"), (120, 80, 3000), 2, "2026-04-01")
    cfg = load_config(root=root, train={"epochs": 4, "dim": 8, "patience": 1, "seed": 3})
    return root, run_train(cfg, "2026-04-01", "evaluated")


def test_refit_trains_on_every_split_for_the_best_epoch_count(trained, capsys):
    root, evaluated = trained
    ev = evaluated.manifest
    assert 1 <= ev.training["best_epoch"] <= ev.training["epochs_run"] <= 4
    assert ev.training["trained_on"] == ["train"] and ev.refit_of is None
    code = main(
        ["train", "--root", root, "--ds", "2026-04-01", "--run", "refit", "--refit",
         "--refit-ds", "2026-04-01", "--refit-run", "evaluated"]
    )  # fmt: skip
    assert code == 0
    assert "(refit; held-out metrics of run=evaluated)" in capsys.readouterr().out
    folder = storage.resolve(root, "models", "2026-04-01", "refit")
    m = storage.read_manifest(folder)
    assert m["refit_of"]["path"] == str(evaluated.path)
    assert m["training"]["trained_on"] == ["train", "val", "test"]
    # Same settings, run for the evaluated model's best number of epochs, no early stopping.
    same = {**ev.train, "epochs": ev.training["best_epoch"]}
    assert json.dumps(m["train"], sort_keys=True) == json.dumps(same, sort_keys=True)  # NaN
    assert m["training"]["epochs_run"] == ev.training["best_epoch"]
    # Every row trained on: more steps per epoch than the evaluated model's train split gave.
    prepared = storage.read_manifest(ev.prepared.path)
    rows = sum(prepared["counts"].values())
    assert m["training"]["steps_per_epoch"] == rows // m["training"]["global_batch"]
    assert m["training"]["steps_per_epoch"] > ev.training["steps_per_epoch"]
    # Its held-out figures are the evaluated twin's (the test rows are in its training data).
    assert m["metrics"]["test"] == ev.metrics["test"]
    assert m["metrics"]["metrics_of"] == str(evaluated.path)
    assert json.loads((folder / "metrics.json").read_text())["metrics_of"] == str(evaluated.path)
    refit_scores = Scorer.load(folder / "arrays.npz").rank_scores(np.arange(5))
    twin_scores = Scorer.load(evaluated.path / "arrays.npz").rank_scores(np.arange(5))
    assert refit_scores.shape == twin_scores.shape and not np.allclose(refit_scores, twin_scores)


def test_refit_flags_without_refit_are_an_error(trained, capsys):
    root, _ = trained
    assert main(["train", "--root", root, "--refit-run", "evaluated"]) == 2
    assert "add --refit" in capsys.readouterr().err
