"""Top-N quality of ``recsys train`` on real MovieLens 100K, next to every baseline.

    python benchmarks/ml100k_ranking.py --data /tmp/ml/ml-100k --root /tmp/ml100k-rank \
        [--protocol stratified|leave-last|return|all] [--set train.dim=64 ...] \
        [--no-rating-model] [--seeds 0 1 2]

``stratified`` is the protocol of the Microsoft Recommenders MovieLens 100K benchmark: 75/25 split
stratified per item (seed 42), every item the user did not rate in train is a candidate, k=10.
Its published NDCG@10: BiVAE 0.475, BPR 0.442, LightGCN 0.420, NCF 0.396, SAR 0.382, SVD 0.096,
Spark ALS 0.044. ``leave-last`` holds out each user's last rating (the nightly protocol);
``return`` each user's first rating after their last pause of at least a day (``prepare --split
return --gap 1d``: the question a nightly table answers, asked of the 300 users who paused).
Every row is also shown as a multiple of EASE's NDCG@10.

Each protocol's split is prepared once with recsys's own Spark ``prepare`` into ``--root`` and
reused. The script trains the default model (``TrainConfig`` plus ``--set`` overrides), and unless
``--no-rating-model`` the rating model (``--objective rating``), then prints NDCG, precision,
recall, MAP, hit rate, coverage and novelty at 10 for: the model, the rating model, the biased
baseline (ranking by predicted rating), the popularity list and EASE (the project's own baseline of
the same run: lambda chosen on the validation split, the default without one) and the
recency-weighted EASE (decay chosen on the validation split). ``--seeds`` trains
the model once per seed (``train.seed``) and ends with the mean NDCG@10 of the model and of EASE
over them. The MovieLens files are read where they are; nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

from ml100k_rmse import SPARK, ensure_prepared  # the same prepare-once helper (this folder)

from recsys.config import load_config
from recsys.errors import RecsysError

PROTOCOLS = {
    # name: (ds, prepare settings)
    "stratified": (
        "2000-03-01",
        {"split": "stratified", "test_fraction": 0.25, "val_fraction": 0.0, "seed": 42},
    ),
    "leave-last": ("2000-02-01", {"split": "leave-last"}),
    "return": ("2000-05-01", {"split": "return", "gap": "1d"}),
}
METRICS = ("ndcg", "precision", "recall", "map", "hit_rate", "coverage", "novelty")


def train(root: str, ds: str, overrides: list[str]) -> tuple[dict, float]:
    from recsys.train.step import run_train

    cfg = load_config(overrides=overrides, root=root, spark=SPARK)
    started = time.perf_counter()
    result = run_train(cfg, ds=ds, prepared_ds=ds)
    return result.manifest, time.perf_counter() - started


def run(args: argparse.Namespace, protocol: str, seed: int | None) -> tuple[float, ...]:
    """Train and print one protocol; the test NDCG@k of the model, EASE and recency EASE."""
    ds, prepare = PROTOCOLS[protocol]
    ensure_prepared(args.root, ds, {"input": str(Path(args.data) / "u.data")}, prepare)
    overrides = [*args.set, *([] if seed is None else [f"train.seed={seed}"])]
    manifest, seconds = train(args.root, ds, overrides)
    metrics, k = manifest.metrics, manifest.train.k
    training = manifest.training
    rows = [(f"model ({manifest.family}, {manifest.objective})", metrics.test)]
    if not args.no_rating_model:
        rating, _ = train(args.root, ds, [*overrides, "train.objective=rating"])
        rows.append(("rating model (biased-mf, rating)", rating.metrics.test))
    base = metrics.baselines
    rows += [("biased baseline", base["biased_baseline"]), ("most popular", base["most_popular"])]
    ease = base.get("ease", {"skipped": "not in this run's metrics"})
    if "skipped" not in ease:
        rows.append((f"EASE (lambda {ease['lambda']:g}, {ease['lambda_from']})", ease))
    recency = base.get("recency_ease", {"skipped": "not in this run's metrics"})
    if "skipped" not in recency:
        rows.append((f"EASE x {recency['decay']:g}^age ({recency['decay_from']})", recency))
    print(
        f"\n{protocol}: {manifest.dims.users} users x {manifest.dims.items} items, "
        f"{metrics.test['n_eval_users']} test users, "
        f"model trained in {seconds:.0f}s ({training.epochs_run} epochs, "
        f"{training.ratings_per_second:,} rows/s) [{' '.join(overrides) or 'defaults'}]"
    )
    print(f"{'':36s}" + "".join(f"{m + '@' + str(k):>13s}" for m in METRICS) + "       / EASE")
    for name, m in rows:
        ratio = m[f"ndcg@{k}"] / ease[f"ndcg@{k}"] if "skipped" not in ease else float("nan")
        line = "".join(f"{m[f'{x}@{k}']:13.4f}" for x in METRICS)
        print(f"{name:36s}{line}{ratio:13.3f}", flush=True)
    if "skipped" in ease:
        print(f"EASE skipped: {ease['skipped']}")
    return tuple(
        float("nan") if "skipped" in m else m[f"ndcg@{k}"] for m in (metrics.test, ease, recency)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/ml/ml-100k", help="the ml-100k folder")
    parser.add_argument("--root", default="/tmp/ml100k-rank", help="recsys storage root")
    parser.add_argument("--protocol", default="all", choices=[*PROTOCOLS, "all"])
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. train.dim=64"
    )
    parser.add_argument("--no-rating-model", action="store_true", help="skip the rating model")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=None, help="train.seed values, e.g. 0 1 2"
    )
    parser.add_argument("--verbose", action="store_true", help="log recsys's INFO messages")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        for protocol in PROTOCOLS if args.protocol == "all" else [args.protocol]:
            seeds = args.seeds or [None]
            got = [run(args, protocol, seed) for seed in seeds]
            if len(seeds) > 1:
                model, ease, recency = (statistics.mean(g[j] for g in got) for j in (0, 1, 2))
                print(
                    f"{protocol}, mean over seeds {' '.join(map(str, seeds))}: model NDCG@10 "
                    f"{model:.4f} (" + " ".join(f"{g[0]:.4f}" for g in got) + f"), EASE "
                    f"{ease:.4f}, recency EASE {recency:.4f}, model / EASE {model / ease:.3f}",
                    flush=True,
                )
    except RecsysError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
