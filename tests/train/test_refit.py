"""Refit: the evaluated model's settings, its best epoch count, every split of its data."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from recsys import integrity, storage
from recsys.artifact import Scorer
from recsys.cli import main
from recsys.config import load_config
from recsys.manifests import ModelManifest


@pytest.fixture(scope="module")
def trained(spark, tmp_path_factory, synthetic_run):
    from recsys.train.step import run_train

    root = synthetic_run(tmp_path_factory.mktemp("refit"), (120, 80, 3000), 2, "2026-04-01")
    cfg = load_config(root=root, train={"epochs": 4, "dim": 8, "patience": 1, "seed": 3})
    return root, run_train(cfg, "2026-04-01", "evaluated")


def test_refit_trains_on_every_split_for_the_best_epoch_count(trained, capsys):
    root, evaluated = trained
    ev = evaluated.manifest
    assert 1 <= ev.training.best_epoch <= ev.training.epochs_run <= 4
    assert ev.training.trained_on == ["train"] and ev.refit_of is None
    code = main(
        ["train", "--root", root, "--ds", "2026-04-01", "--run", "refit", "--refit",
         "--refit-ds", "2026-04-01", "--refit-run", "evaluated",
         "--set", "train.refit_mode=full"]
    )  # fmt: skip
    assert code == 0
    assert "(refit; held-out metrics of run=evaluated)" in capsys.readouterr().out
    folder = storage.resolve(root, "models", "2026-04-01", "refit")
    m = ModelManifest.read(folder)
    assert m.refit_of.path == str(evaluated.path)
    raw = storage.read_manifest(folder)
    assert Path(root) / raw["refit_of"]["path"] == evaluated.path  # relative to the root
    assert m.training.trained_on == ["train", "val", "test"]
    # Same settings, run for the evaluated model's best number of epochs, no early stopping.
    same = replace(ev.train, epochs=ev.training.best_epoch, refit_mode="full")
    assert json.dumps(asdict(m.train), sort_keys=True) == json.dumps(asdict(same), sort_keys=True)
    assert m.training.epochs_run == ev.training.best_epoch
    # Every row trained on: more steps per epoch than the evaluated model's train split gave.
    prepared = storage.read_manifest(ev.prepared.path)
    rows = sum(prepared["counts"].values())
    assert m.training.steps_per_epoch == rows // m.training.global_batch
    assert m.training.steps_per_epoch > ev.training.steps_per_epoch
    # Its held-out figures are the evaluated twin's (the test rows are in its training data).
    assert m.metrics.test == ev.metrics.test
    assert m.metrics.metrics_of == str(evaluated.path)
    assert json.loads((folder / "metrics.json").read_text())["metrics_of"] == str(evaluated.path)
    refit_scores = Scorer.load(folder / "arrays.npz").rank_scores(np.arange(5))
    twin_scores = Scorer.load(evaluated.path / "arrays.npz").rank_scores(np.arange(5))
    assert refit_scores.shape == twin_scores.shape and not np.allclose(refit_scores, twin_scores)


def test_refit_flags_without_refit_are_an_error(trained, capsys):
    root, _ = trained
    assert main(["train", "--root", root, "--refit-run", "evaluated"]) == 2
    assert "add --refit" in capsys.readouterr().err


def test_the_default_refit_continues_and_falls_back_to_full_without_held_out_rows(
    trained, tmp_path, caplog
):
    import logging
    import shutil

    from recsys.train.step import run_train

    root, evaluated = trained
    m = run_train(load_config(root=root), "2026-04-01", "continued", refit_of=evaluated.path)
    assert m.manifest.training.continued_on == ["val", "test"]

    # A prepared run whose rows are all train rows: nothing to continue on.
    src = storage.resolve(root, "prepared", "2026-04-01")
    paths = storage.new_run(root, "prepared", "2026-04-02", "all-train")
    shutil.copytree(src, paths.staging, dirs_exist_ok=True)
    for split in ("val", "test"):
        shutil.rmtree(paths.staging / "ratings" / f"split={split}")
    manifest = storage.read_manifest(src)
    manifest.update(ds="2026-04-02", run="all-train", counts={**manifest["counts"], "val": 0,
                                                             "test": 0},
                    files=integrity.prepared_files(paths.staging))  # fmt: skip
    (paths.staging / "manifest.json").unlink()
    storage.commit(paths, manifest)
    cfg = load_config(root=root, train={"epochs": 2, "dim": 8, "seed": 3})
    only = run_train(cfg, "2026-04-02", "all-train", "2026-04-02", "all-train")
    with caplog.at_level(logging.INFO, logger="recsys.train.step"):
        refit = run_train(load_config(root=root), "2026-04-02", "refit", refit_of=only.path)
    assert refit.manifest.training.trained_on == ["train", "val", "test"]
    assert refit.manifest.training.continued_on is None
    assert any("no val or test rows to continue on" in r.getMessage() for r in caplog.records)


def test_a_full_refit_replays_the_evaluated_models_steps(trained, tmp_path):
    """The step decays on validation plateaus; a full refit has no validation, so it takes the
    evaluated model's step of each epoch instead (``training.table_steps``)."""
    from recsys.config import resolve_train
    from recsys.manifests import PreparedManifest
    from recsys.train.loop import fit
    from recsys.train.step import refit_job

    root, evaluated = trained
    ev = evaluated.manifest
    assert len(ev.training.table_steps) == ev.training.epochs_run
    _, job = refit_job(load_config(root=root, train={"refit_mode": "full"}), evaluated.path)
    assert job.steps == ev.training.table_steps
    _, job = refit_job(load_config(root=root, train={"refit_mode": "continue"}), evaluated.path)
    assert job.steps is None  # a continue refit runs at the warm step

    cfg = load_config(root=root, train={**asdict(ev.train), "epochs": 3})
    assert resolve_train(cfg.train).epochs == 3
    prepared = ev.prepared.folder
    _, _, stats = fit(
        resolve_train(cfg.train), prepared, PreparedManifest.read(prepared), tmp_path,
        tmp_path / "backup",
        ("train", "val", "test"), steps=[0.004, 0.001],
    )  # fmt: skip
    assert stats.table_steps == [0.004, 0.001, 0.001]


def test_a_refit_of_a_model_trained_before_a_setting_was_renamed_or_added(monkeypatch):
    """The fixture is a manifest as ``recsys train`` wrote it; its settings are edited as an
    older recsys would have written them (a renamed setting, a missing one, a retired one)."""
    from recsys import manifests
    from recsys.config import TrainConfig, resolve_train
    from recsys.train.step import refit_config

    fixture = Path(__file__).parents[1] / "fixtures" / "model_manifest_2026-12.json"
    data = json.loads(fixture.read_text())
    train = dict(data["train"])
    train["width"] = train.pop("dim")
    del train["user_group"]
    train["retired_knob"] = "on"
    monkeypatch.setitem(manifests.RENAMED, "train", {"width": "dim"})
    evaluated = ModelManifest.from_dict({**data, "train": train}, fixture)
    cfg = refit_config(load_config(train={"refit_mode": "full"}), evaluated)
    tcfg = resolve_train(cfg.train)
    assert (tcfg.dim, tcfg.epochs, tcfg.refit_mode) == (8, evaluated.best_epoch, "full")
    assert tcfg.user_group == TrainConfig().user_group and not tcfg.warm_start
