"""The gate's re-evaluation and the training run's evaluation, timed on one prepared run.

    python benchmarks/gate_bench.py --root /tmp/bench-var [--dim 64] [--k 10] [--repeat 2]

Needs a prepared run under --root (``recsys data synth --shape ml-1m`` then ``recsys prepare``).
Two random biased-MF ranking models of the prepared shape stand for tonight's model and the
published one (ranking cost does not depend on the weights; tonight's item biases follow
popularity so its figures are not noise). Prints, each with the 1-minute load average read just
before it (the machine may be shared):

1. ``gate``: ``compare_with``, the published model re-evaluated on today's test users beside
   tonight's, as ``recsys gate`` runs it (best of ``--repeat``), and its NDCG figures, which must
   not change between versions of the code;
2. ``evaluate``: ``evaluate_prepared``, the training run's evaluation with every baseline, run
   twice as two models trained on the same prepared run would (the second one finds the
   baselines kept with the prepared run). The ``baselines/`` table under --root is removed first
   so the first run starts cold; ``--gate-only`` skips it;
3. ``distinct``: ``np.unique`` against a sort (``recsys.evaluate.ranking.distinct``) on the
   train split's (user, item) keys, what ``seen_matrix`` dedupes (best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from score_bench import random_arrays  # noqa: E402

from recsys import storage  # noqa: E402
from recsys.artifact import Scorer  # noqa: E402
from recsys.evaluate.gate import compare_with  # noqa: E402
from recsys.evaluate.prepared import evaluate_prepared  # noqa: E402
from recsys.manifests import PreparedManifest  # noqa: E402
from recsys.splits import load_split  # noqa: E402


def models(prepared: Path, dim: int) -> tuple[Scorer, Scorer]:
    """(tonight's, the published) random models; tonight's ranks popular items higher."""
    manifest = PreparedManifest.read(prepared)
    old = random_arrays(manifest.n_users, manifest.n_items, dim)
    items = load_split(prepared, "train", columns=("item_idx",))["item_idx"].to_numpy()
    popularity = np.bincount(items, minlength=manifest.n_items)
    new = {**old, "item_bias": np.log1p(popularity).astype(np.float32) * 3}
    return Scorer(new), Scorer(old)


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def distinct_times(prepared: Path, repeat: int) -> None:
    """``np.unique`` and a sort-based dedupe of the train split's (user, item) keys."""
    train = load_split(prepared, "train", columns=("user_idx", "item_idx"))
    n_items = PreparedManifest.read(prepared).n_items
    keys = train["user_idx"].to_numpy(np.int64) * n_items + train["item_idx"].to_numpy(np.int64)

    def by_sort() -> np.ndarray:
        out = np.sort(keys)
        return out[np.concatenate(([True], out[1:] != out[:-1]))]

    load = os.getloadavg()[0]
    hashed, _ = timed(lambda: np.unique(keys), repeat)
    sort, _ = timed(by_sort, repeat)
    print(
        f"distinct {keys.size:,} keys: np.unique {hashed:.2f} s, sort {sort:.3f} s "
        f"(numpy {np.__version__}, load {load:.1f})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True, help="storage root holding a prepared run")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--gate-only", action="store_true", help="time the gate alone")
    args = ap.parse_args(argv)
    prepared = storage.latest(args.root, "prepared")
    manifest = PreparedManifest.read(prepared)
    print(f"prepared {prepared}: {manifest.n_users:,} users x {manifest.n_items:,} items")
    new, old = models(prepared, args.dim)

    load = os.getloadavg()[0]
    seconds, got = timed(lambda: compare_with(new, prepared, old, prepared, args.k), args.repeat)
    print(
        f"gate     {seconds:7.2f} s  (load {load:.1f})  users {got['users']:,}  "
        f"ndcg@{args.k} new {got['new']:.6f} published {got['published']:.6f}"
    )

    distinct_times(prepared, args.repeat)
    if args.gate_only:
        return 0
    shutil.rmtree(storage.local_root(args.root) / "baselines", ignore_errors=True)
    for attempt in ("first model", "second model"):
        load = os.getloadavg()[0]
        seconds, got = timed(lambda: evaluate_prepared(new, prepared, k=args.k), 1)
        ease = got["baselines"]["ease"].get(f"ndcg@{args.k}", "skipped")
        print(
            f"evaluate {seconds:7.2f} s  (load {load:.1f})  {attempt}: test ndcg@{args.k} "
            f"{got['test'][f'ndcg@{args.k}']:.6f}, EASE {ease}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
