"""EASE's cost by catalogue size: the seconds and peak memory of one fit, to set its item limit.

    python benchmarks/ease_bench.py [--items 1000 2000 5000] [--users 6000] [--per-user 100]

Each size runs in a fresh process (so the peak RSS is its own) on synthetic binary data: ``--users``
users with ``--per-user`` distinct items each, drawn with a Zipf-like popularity. It prints the
seconds of the Gram matrix (``X^T X``), of one inversion (one lambda; a validation grid of g
lambdas costs g of them), of scoring every user, and the peak resident memory the fit added
(``ru_maxrss`` minus the resident size before it). ``recsys.evaluate.baselines.EASE_MAX_ITEMS`` is
set from these figures (docs/quality.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(n_items: int, n_users: int, per_user: int) -> dict[str, float]:
    import numpy as np
    import pandas as pd
    import psutil

    from recsys import schema as S
    from recsys.evaluate.baselines import EASE, item_gram

    rng = np.random.default_rng(0)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    weights /= weights.sum()
    per_user = min(per_user, n_items)
    items = np.concatenate(
        [rng.choice(n_items, per_user, replace=False, p=weights) for _ in range(n_users)]
    )
    train = pd.DataFrame(
        {S.USER_IDX: np.repeat(np.arange(n_users), per_user), S.ITEM_IDX: items.astype(np.int32)}
    )
    before = psutil.Process().memory_info().rss
    model = EASE(500.0)
    started = time.perf_counter()
    seen = model.interactions(train, n_users, n_items)
    gram = item_gram(seen)
    gram_s = time.perf_counter() - started
    started = time.perf_counter()
    model.fit(train, n_users, n_items, gram, seen)
    fit_s = time.perf_counter() - started
    del gram
    started = time.perf_counter()
    for start in range(0, n_users, 1024):
        model.score_block(np.arange(start, min(start + 1024, n_users)))
    score_s = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return {
        "items": n_items,
        "users": n_users,
        "gram_s": gram_s,
        "fit_s": fit_s,
        "score_s": score_s,
        "peak_mib": (peak - before) / 2**20,
        "bytes_per_item2": (peak - before) / n_items**2,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 2000, 5000])
    parser.add_argument("--users", type=int, default=6000, help="ml-1m has 6,040")
    parser.add_argument("--per-user", type=int, default=100, help="distinct items per user")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.users, args.per_user)))
        return 0
    print(
        f"{'items':>7s}{'users':>8s}{'gram s':>9s}{'inverse s':>11s}{'score s':>9s}"
        f"{'peak MiB':>10s}{'B/item^2':>10s}"
    )
    for n in args.items:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(n),
                "--users",
                str(args.users),
                "--per-user",
                str(args.per_user),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['items']:7,d}{r['users']:8,d}{r['gram_s']:9.1f}{r['fit_s']:11.1f}"
            f"{r['score_s']:9.1f}{r['peak_mib']:10.0f}{r['bytes_per_item2']:10.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
