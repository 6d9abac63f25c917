"""Training settings that must fail early, the automatic batch, and TF_CONFIG detection."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from recsys.config import TrainConfig, check_train_config
from recsys.errors import RecsysError
from recsys.train.launch.strategy import worker_count
from recsys.train.plan import auto_global_batch, compile_options


@pytest.mark.parametrize(
    ("n_train", "batch"),
    [(1_000, 256), (80_000, 256), (1_000_000, 2048), (24_700_000, 16384)],
)
def test_auto_batch_suits_the_data_size(n_train, batch):
    assert auto_global_batch(n_train) == batch
    assert n_train // batch >= 300 or batch == 256


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"model": "svd"}, "--model must be one of"),
        ({"objective": "clicks"}, "--objective must be ranking or rating, got 'clicks'"),
        ({"loss": "hinge"}, "train.loss must be softmax or bpr"),
        ({"negatives": -1}, "train.negatives and train.in_batch_negatives must be >= 0"),
        ({"dim": 0}, "train.dim must be >= 1"),
        ({"hidden": "64,x"}, "train.hidden must be sizes like 128,64"),
        ({"user_group": 0}, "train.user_group must be >= 1, got 0"),
        ({"decay": 1.5}, r"train.decay must be in \(0, 1\], got 1.5"),
        ({"decay_patience": 0}, "train.decay_patience must be >= 1"),
    ],
)
def test_bad_train_settings(change, needle):
    with pytest.raises(RecsysError, match=needle):
        check_train_config(TrainConfig(**change))


def test_worker_count_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert worker_count() == 1
    cluster = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert worker_count() == 2
    monkeypatch.setenv("TF_CONFIG", "not json")
    assert worker_count() == 1


def test_compile_options_follow_replicas():
    cfg = TrainConfig()
    # Keras' whole-step XLA stays off: the model compiles its own islands (RecModel.island).
    assert compile_options(cfg, 1, 1000) == {"jit_compile": False, "steps_per_execution": 62}
    assert compile_options(cfg, 1, 10) == {"jit_compile": False, "steps_per_execution": 10}
    assert compile_options(cfg, 2, 1000) == {"jit_compile": False, "steps_per_execution": 1}


def test_epoch_steps_are_whole_calls():
    from recsys.train.plan import epoch_steps, steps_per_call

    # 362 batches: 6 calls of 60 steps (not 6 calls of 64, which would train 384).
    assert steps_per_call(362) == 60
    assert epoch_steps(362 * 100 + 7, 100, replicas=1) == 360
    assert epoch_steps(64 * 100, 100, replicas=1) == 64
    assert epoch_steps(50, 100, replicas=1) == 1
    assert epoch_steps(362 * 100, 100, replicas=2) == 362


def test_unset_settings_take_the_objectives_defaults():
    from recsys.config import OBJECTIVE_DEFAULTS, resolve_train

    for objective, defaults in OBJECTIVE_DEFAULTS.items():
        cfg = resolve_train(TrainConfig(objective=objective))
        assert {k: getattr(cfg, k) for k in defaults} == defaults
    # An explicit value wins over the objective's default.
    assert resolve_train(TrainConfig(objective="rating", l2=0.2)).l2 == 0.2
    assert TrainConfig().objective == "ranking"


@pytest.mark.parametrize("method", ["adam", "adagrad"])
def test_row_sparse_update_sums_repeated_rows_once(method):
    """Rows repeated in a batch move once, by their summed gradient (the tf.unique-free path)."""
    import tensorflow as tf

    from recsys.train.optim import SparseTableOptimizer

    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3)).astype(np.float32)
    var = keras.Variable(start, name="user_emb")
    opt = SparseTableOptimizer(0.1, table_method=method)
    opt.build([var])
    rows = np.array([4, 1, 4, 0, 4], np.int32)
    values = rng.normal(size=(5, 3)).astype(np.float32)
    opt.apply([tf.IndexedSlices(tf.constant(values), tf.constant(rows))], [var])

    g = np.zeros_like(start)
    np.add.at(g, rows, values)  # the summed gradient per row
    touched = np.isin(np.arange(6), rows)[:, None]
    if method == "adam":  # first step: m = 0.1 g, v = 0.001 g^2, bias-corrected
        m, v = 0.1 * g, 0.001 * g**2
        alpha = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
        want = start - np.where(touched, alpha * m / (np.sqrt(v) + 1e-7), 0)
    else:  # row-wise Adagrad: accumulator 0.1 + mean square of the row's summed gradient
        acc = 0.1 + (g**2).mean(axis=1, keepdims=True)
        want = start - np.where(touched, 0.1 * g / np.sqrt(acc), 0)
    np.testing.assert_allclose(np.asarray(var), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "n_items", "batch", "group", "in_batch"),
    [
        ({}, 5000, 16384, 4, 256),  # the sampled softmax of biased-mf: user runs
        ({"user_group": 8}, 5000, 2048, 8, 256),
        ({"user_group": 8}, 5000, 1024, 4, 256),  # never fewer runs than in-batch negatives
        ({}, 5000, 256, 1, 256),  # small batches keep rows in any order
        ({}, 5000, 1000, 2, 256),  # runs that fill a batch of 1,000 whole: 2, not 3
        ({}, 400, 16384, 1, 0),  # a catalogue the full softmax covers
        ({"loss": "bpr"}, 5000, 16384, 1, 256),
        ({"model": "neumf"}, 5000, 16384, 1, 256),  # no factored candidate scores to share
    ],
)
def test_user_runs_serve_the_factored_sampled_softmax_only(change, n_items, batch, group, in_batch):
    from recsys.manifests import PreparedManifest
    from recsys.train.models.build import ranking_settings

    manifest = PreparedManifest(
        ds="d", run="r", n_users=10, n_items=n_items, counts={"train": 10}, global_mean=3.5
    )
    settings = ranking_settings(TrainConfig(**{"user_group": 4, **change}), manifest, batch)
    assert (settings["group"], settings["in_batch"]) == (group, in_batch)


def test_table_step_follows_the_batch():
    from recsys.train.plan import table_learning_rate

    # Adagrad: linear in the batch; lazy Adam from random rows: its square root; warm: as given.
    assert table_learning_rate(0.5, 1024, "adagrad") == pytest.approx(2.0)
    assert table_learning_rate(0.002, 16384, "adam") == pytest.approx(0.016)
    assert table_learning_rate(0.002, 256, "adam") == pytest.approx(0.002)
    assert table_learning_rate(0.001, 16384, "adam", warm=True) == pytest.approx(0.001)
