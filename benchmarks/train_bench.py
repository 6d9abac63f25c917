"""Training throughput on the production path: MirroredStrategy, tf.data from Parquet, sparse step.

    python benchmarks/train_bench.py --root /tmp/bench-var --batch 8192 16384 --epochs 2

Needs a prepared run under --root (e.g. `recsys prepare` of `recsys data synth --shape ml-25m`).
For each global batch size it trains ``--epochs`` epochs with the default model (the ranking
objective; ``--set train.objective=rating`` for the rating model) and prints the ratings per
second of the epochs after the first (the first pays for XLA compilation), the seconds per epoch
(validation excluded), the validation metric of each epoch and the time to quality: the first
epoch whose validation NDCG@10 is within 1% of the run's best, and the wall time (validation
included) until its end. ``--epochs 0`` runs the objective's default schedule with early stopping.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import tempfile
from pathlib import Path

from recsys import storage
from recsys.config import load_config, resolve_train
from recsys.manifests import PreparedManifest
from recsys.train.loop import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/bench-var")
    parser.add_argument("--ds", help="the prepared run of this day (default: prepared/_LATEST)")
    parser.add_argument("--batch", type=int, nargs="+", default=[0], help="0: automatic")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)

    prepared = (
        storage.resolve(args.root, "prepared", args.ds)
        if args.ds
        else storage.latest(args.root, "prepared")
    )
    manifest = PreparedManifest.read(prepared)
    print(f"prepared {prepared}: {manifest.counts['train']:,} train rows")
    for batch in args.batch:
        cfg = load_config(overrides=args.overrides, root=args.root)
        fixed = {"epochs": args.epochs, "patience": args.epochs} if args.epochs else {}
        cfg = dataclasses.replace(
            cfg, train=dataclasses.replace(cfg.train, batch_per_replica=batch, **fixed)
        )
        with tempfile.TemporaryDirectory() as work:
            tcfg = resolve_train(cfg.train)
            _, history, stats = fit(tcfg, prepared, manifest, Path(work), Path(work) / "backup")
        print(
            f"model {cfg.train.model} ({cfg.train.objective}) "
            f"global batch {stats.global_batch}: "
            f"{stats.ratings_per_second:,} ratings/s, epoch seconds {stats.epoch_seconds}, "
            f"loss {stats.ranking_loss or 'mse'}; "
            + ", ".join(
                f"{key} {[round(v, 4) for v in history[key]]}"
                for key in ("val_rmse", "val_ndcg@10")
                if key in history
            )
        )
        print(time_to_quality(history.get("val_ndcg@10"), stats.elapsed_seconds))


def time_to_quality(ndcg: list[float] | None, elapsed: list[float]) -> str:
    """The first epoch within 1% of the best validation NDCG@10, and the wall time to reach it."""
    if not ndcg:
        return "time to quality: no validation split"
    best = max(ndcg)
    epoch = next(i for i, v in enumerate(ndcg) if v >= 0.99 * best)
    return (
        f"time to quality: epoch {epoch + 1} of {len(ndcg)} (val ndcg@10 {ndcg[epoch]:.4f}, best "
        f"{best:.4f}), {elapsed[epoch]:.0f} s of {elapsed[-1]:.0f} s"
    )


if __name__ == "__main__":
    main()
