"""`recsys train` end to end on a small synthetic set: artifacts, metrics, resume, bad input."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from recsys import storage
from recsys.artifact import Scorer
from recsys.cli import main
from recsys.config import load_config
from recsys.errors import RecsysError

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def prepared_root(spark, tmp_path_factory, synthetic_run):
    """A prepared leave-last run of 120 users x 150 items (module-scoped: Spark is slow)."""
    return synthetic_run(tmp_path_factory.mktemp("train"), (120, 150, 6000), 1, "2026-01-02")


def train_cfg(root, **train):
    return load_config(root=root, train={"epochs": 4, "eval_max_users": 0, **train})


@pytest.mark.parametrize(
    ("model", "objective"),
    [("biased-mf", "rating"), ("neumf", "rating"), ("biased-mf", "ranking"), ("ncf", "ranking")],
)
def test_train_writes_a_complete_model_run(prepared_root, model, objective):
    from recsys.train.step import run_train

    cfg = train_cfg(prepared_root, model=model, objective=objective)
    result = run_train(cfg, "2026-01-03")
    m = result.manifest
    assert storage.latest(prepared_root, "models") == result.path
    assert m.model_version == f"{model}-2026-01-03-{result.path.name[4:]}"
    assert m.family == model and m.objective == objective
    assert m.prepared.ds == "2026-01-02"
    assert m.side_features > 0  # the synthetic set has genres
    assert {"tensorflow", "keras", "numpy"} <= set(m.versions)
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert {"ndcg@10", "map@10", "coverage@10", "novelty@10"} <= set(metrics["test"])
    assert {"global_mean", "biased_baseline", "most_popular", "ease"} <= set(metrics["baselines"])
    assert "ndcg@10" in metrics["baselines"]["biased_baseline"]  # the rating baseline ranks too
    # EASE, its lambda chosen on the validation split of this leave-last run
    assert metrics["baselines"]["ease"]["lambda_from"] == "validation"
    assert "| EASE |" in (result.path / "report.md").read_text()
    if objective == "rating":
        assert metrics["test"]["rmse"] < metrics["baselines"]["global_mean"]["rmse"]
    else:
        assert "rmse" not in metrics["test"]
        # 150 items, fewer than the 512 sampled candidates: the softmax runs over all of them.
        assert m.training.ranking_loss["negatives"] == 0
    for name in ("report.md", "report.png", "history.json", "arrays.npz"):
        assert (result.path / name).is_file()
    assert any((result.path / "tensorboard").rglob("*tfevents*"))
    # model.keras loads with safe mode on and agrees with the numpy arrays.
    loaded = keras.saving.load_model(result.path / "model.keras", safe_mode=True)
    x = {"user_idx": np.array([0, 5, 7], np.int32), "item_idx": np.array([1, 2, 3], np.int32)}
    keras_pred = loaded.predict(x, verbose=0)[:, 0]
    numpy_pred = Scorer.load(result.path / "arrays.npz").predict(x["user_idx"], x["item_idx"])
    assert np.allclose(keras_pred, numpy_pred, atol=1e-4)


def test_same_seed_same_model(prepared_root):
    from recsys.train.step import run_train

    a = run_train(train_cfg(prepared_root, epochs=2), "2026-01-04")
    b = run_train(train_cfg(prepared_root, epochs=2), "2026-01-04")
    wa, wb = (np.load(r.path / "arrays.npz") for r in (a, b))
    assert np.allclose(wa["user_factors"], wb["user_factors"], atol=1e-6)


def test_bad_model_name_is_one_sentence(prepared_root, capsys):
    code = main(["train", "--root", prepared_root, "--model", "svd++"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "recsys train: error: --model must be one of mf, biased-mf, ncf, neumf, seq, got 'svd++'"
    )


def test_bad_option_type_is_one_sentence(prepared_root, capsys):
    assert main(["train", "--root", prepared_root, "--set", "train.dim=wide"]) == 2
    assert "train.dim expects int, got 'wide'" in capsys.readouterr().err


def test_missing_prepared_run_is_one_sentence(tmp_path, capsys):
    assert main(["train", "--root", str(tmp_path)]) == 2
    assert "no complete prepared run" in capsys.readouterr().err


def test_incomplete_prepared_partition(prepared_root, tmp_path):
    from recsys.train.step import run_train

    broken = tmp_path / "prepared" / "ds=2026-01-02" / "run=half"
    (broken / "ratings").mkdir(parents=True)
    with pytest.raises(RecsysError, match="not a complete prepared run"):
        run_train(train_cfg(str(tmp_path)), prepared_ds="2026-01-02", prepared_run="half")


def test_evaluate_command_prints_metrics_and_baselines(prepared_root, capsys):
    from recsys.train.step import run_train

    result = run_train(train_cfg(prepared_root, epochs=1, objective="rating"), "2026-01-06")
    code = main(["evaluate", "--root", prepared_root, "--set", "train.eval_max_users=0"])
    out = capsys.readouterr().out
    assert code == 0
    assert result.manifest.model_version in out.replace("\n", "")
    assert "ndcg@10" in out and "most popular" in out and "EASE" in out
    assert "EASE: lambda" in out  # how its column was fitted
    rmse = f"{result.manifest.metrics.test['rmse']:.4f}"
    assert rmse in out  # re-evaluation gives the training run's own figure
