"""Seconds of the per-epoch ranking validation: the dense path rebuilt every epoch against a task
built once and ranked by the fused factor kernel.

    python benchmarks/validation_bench.py --root /tmp/bench25 --ds 2026-12-01 --repeat 3

Needs a prepared run under --root (e.g. `recsys prepare` of `recsys data synth --shape ml-25m`).
The model is ``score_bench.py``'s random biased MF of ``--dim`` factors in the shape of that run
(the lists' quality does not change the work). Prints the one-off build, the seconds of one
epoch's validation each way (median of ``--repeat``) and the share of list slots both ways fill
alike (float32 rounding of the two kernels may swap near-ties).
"""

from __future__ import annotations

import argparse
import statistics
import time

from score_bench import random_arrays  # this folder

from recsys import storage
from recsys.artifact import Scorer
from recsys.config import load_config
from recsys.evaluate.prepared import sample_users
from recsys.evaluate.protocol import RankingTask, evaluate_scorer
from recsys.manifests import PreparedManifest
from recsys.splits import load_split


def median_seconds(fn, repeat: int):
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="/tmp/bench-var")
    parser.add_argument("--ds", help="the prepared run of this day (default: prepared/_LATEST)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    prepared = storage.resolve(args.root, "prepared", args.ds)
    manifest = PreparedManifest.read(prepared)
    max_users, k = load_config().train.eval_max_users, 10
    train = load_split(prepared, "train")
    val = sample_users(load_split(prepared, "val"), max_users, 0)
    scorer = Scorer(random_arrays(manifest.n_users, manifest.n_items, args.dim))
    n = (manifest.n_users, manifest.n_items)
    print(f"{prepared}: {len(train):,} train rows, {val.iloc[:, 0].nunique():,} validation users")

    dense_s, dense = median_seconds(
        lambda: evaluate_scorer(scorer.rank_scores, train, val, *n, k=k), args.repeat
    )
    build_s, task = median_seconds(lambda: RankingTask.build(train, val, *n), 1)
    fused_s, lists = median_seconds(
        lambda: task.recommend(scorer.rank_scores, k, factors_fn=scorer.order_factors),
        args.repeat,
    )
    fused = task.metrics(lists, k)
    same = task.recommend(scorer.rank_scores, k)
    print(f"dense, rebuilt every epoch: {dense_s:6.2f} s an epoch")
    print(f"task built once:            {build_s:6.2f} s once")
    print(f"fused factor kernel:        {fused_s:6.2f} s an epoch (+ metrics)")
    ndcg = f"ndcg@{k}"
    print(f"list slots equal: {(lists == same).mean():.6f}; NDCG@{k} {dense[ndcg]:.6f} (dense), "
          f"{fused[ndcg]:.6f} (fused)")  # fmt: skip


if __name__ == "__main__":
    main()
