"""Test-only: a small deterministic training run through the barrier launcher.

Shipped with ``--py-files`` beside the recsys zip. Run by spark-submit it is the driver
(``barrier_probe.py WORKERS SPLIT_DIR OUT_JSON``:
:func:`recsys.train.launch.barrier.run_barrier` with ``barrier_probe:train`` as the entry); each
worker then imports it and calls :func:`train`, which
fits the project's models with its optimiser, without shuffling, so that two workers and one can
be compared weight for weight.
"""

from __future__ import annotations

import json
import sys

# (family, objective, table optimiser): the ranking default (lazy Adam, full softmax here, since
# sampled negatives differ per replica) and a rating model with row-wise Adagrad.
CASES = (("biased-mf", "ranking", "adam"), ("biased-mf", "rating", "adagrad"))
GLOBAL_BATCH, STEPS, EPOCHS = 32, 6, 2


def train(split_dir: str) -> dict[str, list]:
    """Train every case on ``split_dir``; returns ``{case: [weights as lists]}`` (chief's)."""
    import keras
    import numpy as np

    from recsys.config import TrainConfig
    from recsys.train.data import ratings_dataset
    from recsys.train.launch.strategy import make_strategy
    from recsys.train.models.build import model_class
    from recsys.train.optim import SparseTableOptimizer
    from recsys.train.plan import compile_options

    strategy = make_strategy()  # MultiWorkerMirroredStrategy when TF_CONFIG names 2 workers
    replicas = strategy.num_replicas_in_sync
    out = {}
    for family, objective, method in CASES:
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = model_class(family)(20, 30, dim=4, init_scale=0.3, seed=1, objective=objective)
            model.build()
            model.xla = False
            rate = 0.1 if method == "adagrad" else 0.001
            optimizer = SparseTableOptimizer(rate, 0.01, table_method=method, epsilon=1e-3)
            model.compile(
                optimizer=optimizer, **compile_options(TrainConfig(), replicas, steps=STEPS)
            )
        data = strategy.distribute_datasets_from_function(
            lambda ctx: ratings_dataset(
                split_dir,
                global_batch_size=GLOBAL_BATCH,
                shuffle=False,
                input_context=ctx,
                drop_remainder=True,
                epochs=None,
            )
        )
        model.fit(data, epochs=EPOCHS, steps_per_epoch=STEPS, verbose=0)
        out["/".join((family, objective, method))] = [
            np.asarray(w).tolist() for w in model.trainable_weights
        ]
    return {"replicas": replicas, "weights": out}


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    from recsys.train.launch.barrier import run_barrier

    workers, split_dir, out = int(argv[0]), argv[1], argv[2]
    spark = SparkSession.builder.appName("barrier-probe").getOrCreate()
    result = run_barrier(
        spark.sparkContext, workers, "barrier_probe:train", {"split_dir": split_dir}
    )
    with open(out, "w") as handle:
        json.dump(result, handle)
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
