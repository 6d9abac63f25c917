"""Two replicas with the same global batch give the same weights as one replica.

Logical CPU devices can only be configured before TensorFlow initialises, so the training runs in
a subprocess: one for all the cases (a TensorFlow start-up is ~5 CPU-seconds), each seeded afresh,
and each test checks its own case's weights. Traps this guards: Keras 3.15 skips its 1/replicas
loss scaling for (batch,) outputs (ours are (batch, 1) and the loss is averaged over the global
batch), and a sparse optimiser that mishandles the cross-replica sum of IndexedSlices.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("tensorflow")

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from recsys.train.data import ratings_dataset
    from recsys.train.models.build import model_class
    from recsys.train.optim import SparseTableOptimizer
    from recsys.train.launch.strategy import make_strategy
    from recsys.train.plan import compile_options
    from recsys.config import TrainConfig

    split_dir, cases = sys.argv[1], json.loads(sys.argv[2])
    results = {}
    # One strategy per device list for every case: a second MirroredStrategy in one process
    # would number its collectives from the start again and clash with the first's.
    strategies = {n: make_strategy(["/cpu:0", "/cpu:1"][:n]) for n in (1, 2)}
    for family, jit, objective, method in cases:
        jit = jit == "1"
        out = {}
        for devices in (["/cpu:0"], ["/cpu:0", "/cpu:1"]):
            keras.utils.set_random_seed(0)
            strategy = strategies[len(devices)]
            with strategy.scope():
                kw = {"hidden": (8,), "dropout": 0.0} if family in ("ncf", "neumf") else {}
                cls = model_class(family)
                model = cls(20, 30, dim=4, init_scale=0.3, seed=1, objective=objective, **kw)
                model.build()
                model.xla = jit and len(devices) == 1
                options = compile_options(TrainConfig(jit_compile=jit), len(devices), steps=6)
                optimizer = SparseTableOptimizer(0.1 if method == "adagrad" else 0.001, 0.01,
                                                 table_method=method, epsilon=1e-3)
                model.compile(optimizer=optimizer, **options)
            data = strategy.distribute_datasets_from_function(
                lambda ctx: ratings_dataset(split_dir, global_batch_size=32, shuffle=False,
                                            input_context=ctx, drop_remainder=True, epochs=None))
            model.fit(data, epochs=2, steps_per_epoch=6, verbose=0)
            out[len(devices)] = [np.asarray(w).tolist() for w in model.trainable_weights]
        results["/".join((family, "1" if jit else "0", objective, method))] = out
    print(json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("ratings") / "split=train"
    folder.mkdir()
    n = 6 * 32
    # One file per replica-sized half keeps both replicas' shards identical in size.
    pq.write_table(
        pa.table(
            {
                "user_idx": rng.integers(0, 20, n).astype(np.int32),
                "item_idx": rng.integers(0, 30, n).astype(np.int32),
                "rating": rng.uniform(1, 5, n).astype(np.float32),
                "ts": np.arange(n, dtype=np.int64),
            }
        ),
        folder / "part-0.parquet",
    )
    return folder


CASES = [
    ("biased-mf", "1", "rating", "adagrad"),
    ("ncf", "0", "rating", "adagrad"),
    # Ranking: the full softmax (sampled negatives differ per replica).
    ("biased-mf", "1", "ranking", "adagrad"),
    # Lazy Adam, the ranking default: the second replica's copy of a table (named
    # ".../replica_1:0") once took the dense-Adam path at the dense rate and drifted ~1e-4.
    ("biased-mf", "1", "ranking", "adam"),
    ("biased-mf", "0", "rating", "adam"),
]


@pytest.fixture(scope="module")
def trained(split_dir) -> dict[str, dict]:
    """Every case's weights after one and two replicas: ``{"family/jit/objective/method":
    {"1": weights, "2": weights}}``, from one subprocess."""
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(split_dir), json.dumps(CASES)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize(("family", "jit", "objective", "method"), CASES)
def test_two_replicas_match_one(trained, family, jit, objective, method):
    weights = trained["/".join((family, jit, objective, method))]
    one, two = weights["1"], weights["2"]
    assert len(one) == len(two)
    moved = False
    for a, b in zip(one, two, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert np.allclose(a, b, atol=1e-5), np.abs(a - b).max()
        moved |= not np.allclose(a, 0)
    assert moved


def test_device_kind_names_the_gpus_or_says_there_is_none(monkeypatch):
    import tensorflow as tf

    from recsys.train.launch.strategy import device_kind

    gpus = [SimpleNamespace(name=f"/physical_device:GPU:{i}") for i in range(2)]
    details = {gpus[0].name: {"device_name": "NVIDIA A100"}, gpus[1].name: {}}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: gpus)
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda d: details[d.name])
    assert device_kind() == "2 GPU(s): NVIDIA A100, /physical_device:GPU:1"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: [])
    assert device_kind() == "CPU (no GPU visible)"


def test_make_strategy_logs_version_and_devices(caplog):
    import tensorflow as tf

    from recsys.train.launch.strategy import device_kind, make_strategy

    caplog.set_level(logging.INFO, logger="recsys.train.launch.strategy")
    make_strategy(["/cpu:0"])
    assert caplog.messages[-1] == (
        f"TensorFlow {tf.__version__} on {device_kind()}: "
        "default strategy over /cpu:0, 1 replica(s)"
    )
    make_strategy(["/cpu:0", "/cpu:1"])
    assert caplog.messages[-1].endswith("MirroredStrategy over /cpu:0, /cpu:1, 2 replica(s)")


def test_each_registered_family_builds_and_exports_what_it_declares():
    """A family's Keras class carries its registry name and exports the arrays it declares."""
    from recsys.families import FAMILIES
    from recsys.train.models.build import model_class

    for name, spec in FAMILIES.items():
        model = model_class(name)(20, 30, dim=4, objective="ranking")
        model.build()
        assert model.family == name
        exported = set(model.export_arrays())
        for array in spec.arrays:
            if "<k>" in array:  # one per dense layer of the tower
                assert any(a.startswith(array.split("<k>")[0]) for a in exported), (name, array)
            else:
                assert array in exported, (name, array)
