"""Training on the Spark cluster: 1 vs 2 barrier workers on a loopback standalone cluster.

    python benchmarks/barrier_bench.py --root /tmp/bench-1m [--epochs 3] [--workers 1 2]

Needs nothing but this venv: without a prepared run under --root it synthesises the ml-1m shape
(``recsys data synth --shape ml-1m``) and prepares it. It starts a standalone master and two
workers of one core each on 127.0.0.1 (``tests/sparkproc.py``), runs ``spark-submit
jobs/train.py`` once per worker count (cold start, no early stopping, the same global batch),
and prints for each: wall time of the job, training rows/s (the manifest's figure: training
steps only, first epoch excluded), seconds per epoch. Then the bytes one step all-reduces,
measured from the gradients of one batch of the same model (sparse table gradients are
all-gathered, dense ones all-reduced), which the README's scaling estimate starts from.
Every process it starts is stopped by process group.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

DS = "2026-01-01"


def prepare(root: Path) -> None:
    """Synthesise and prepare the ml-1m shape under ``root`` unless a prepared run is there."""
    from recsys import storage

    try:
        storage.latest(str(root), "prepared")
        return
    except Exception:  # noqa: BLE001 (none yet)
        pass
    data = root.parent / f"{root.name}-data"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    recsys = [sys.executable, "-m", "recsys.cli"]
    if not data.exists():
        subprocess.run([*recsys, "data", "synth", "--shape", "ml-1m", "--dest", str(data)],
                       check=True, env=env)  # fmt: skip
    subprocess.run([*recsys, "prepare", "--input", str(data), "--root", str(root), "--ds", DS,
                    "--set", "spark.master=local[2]"], check=True, env=env)  # fmt: skip


def submit(cluster, zip_path: Path, root: Path, workers: int, epochs: int) -> dict:
    """One ``jobs/train.py`` run; its wall time and the manifest's training record."""
    import sparkproc

    from recsys import storage
    from recsys.manifests import ModelManifest

    run = f"bench-w{workers}-{int(time.time())}"
    cmd = [sparkproc.SPARK_SUBMIT, "--master", cluster.url, "--executor-memory", "512m"]
    cmd += ["--total-executor-cores", str(workers), "--conf", "spark.executor.cores=1"]
    cmd += ["--conf", "spark.ui.enabled=false", "--py-files", str(zip_path)]
    cmd += [str(ROOT / "jobs" / "train.py"), "--root", str(root), "--ds", DS, "--run", run]
    for kv in (f"train.workers={workers}", f"train.epochs={epochs}", "train.patience=1000"):
        cmd += ["--set", kv]
    load = os.getloadavg()[0]
    result = sparkproc.run(cmd, sparkproc.spark_env(None), root, 3600)
    if result.code != 0:
        sys.exit(f"spark-submit failed:\n{result.report()}")
    training = ModelManifest.read(storage.resolve(str(root), "models", DS, run)).training
    return {"wall": result.seconds, "load": load, **dataclasses.asdict(training)}


def step_bytes(root: Path, replicas: int) -> dict[str, int]:
    """Bytes of one step's gradients at ``replicas`` workers' per-replica batch (one worker's
    share): sparse table rows (values + indices) and dense weights."""
    import tensorflow as tf

    from recsys import storage
    from recsys.config import Config, resolve_train
    from recsys.manifests import PreparedManifest
    from recsys.splits import split_dir
    from recsys.train.data import ratings_dataset
    from recsys.train.loop import start_model
    from recsys.train.plan import plan_run
    from recsys.train.warm import COLD

    prepared = storage.latest(str(root), "prepared")
    manifest = PreparedManifest.read(prepared)
    tcfg = resolve_train(Config().train)
    plan = plan_run(tcfg, manifest, ("train",), replicas)
    start = start_model(tcfg, prepared, manifest, plan, tf.distribute.get_strategy(), COLD)
    model = start.model
    data = ratings_dataset(split_dir(prepared, "train"), global_batch_size=plan.per_replica)
    x, y = next(iter(data))
    with tf.GradientTape() as tape:
        per_example, _ = model._per_example(x, y, model.optimizer.iterations.value)
        loss = tf.nn.compute_average_loss(per_example, global_batch_size=plan.global_batch)
    sparse = dense = 0
    for grad in tape.gradient(loss, model.trainable_variables):
        if isinstance(grad, tf.IndexedSlices):
            sparse += grad.values.numpy().nbytes + grad.indices.numpy().nbytes
        elif grad is not None:
            dense += grad.numpy().nbytes
    return {"sparse": sparse, "dense": dense, "per_replica": plan.per_replica,
            "global_batch": plan.global_batch}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    import sparkproc

    root = args.root.absolute()
    prepare(root)
    with tempfile.TemporaryDirectory(prefix="barrier-bench-") as tmp:
        zip_path = sparkproc.package_zip(Path(tmp) / "recsys.zip")
        with sparkproc.start_standalone_cluster(
            Path(tmp) / "cluster", cores=1, memory="1g", timeout=300, workers=2
        ) as cluster:
            results = {n: submit(cluster, zip_path, root, n, args.epochs) for n in args.workers}
    print(f"\nml-1m shape, {args.epochs} epochs, loopback standalone cluster (2 workers x 1 core)")
    print("workers | wall s | rows/s | s/epoch | global batch | steps/epoch | load before")
    for n, r in results.items():
        epochs = ", ".join(f"{s:.1f}" for s in r["epoch_seconds"])
        print(f"{n} | {r['wall']:.1f} | {r['ratings_per_second']:,} | {epochs} | "
              f"{r['global_batch']} | {r['steps_per_epoch']} | {r['load']:.1f}")  # fmt: skip
    for n in args.workers:
        b = step_bytes(root, n)
        print(f"one step at {n} worker(s) (per-replica batch {b['per_replica']}, global "
              f"{b['global_batch']}): sparse gradients {b['sparse'] / 2**20:.2f} MiB per worker "
              f"(all-gathered), dense {b['dense'] / 2**20:.3f} MiB (all-reduced)")  # fmt: skip


if __name__ == "__main__":
    main()
