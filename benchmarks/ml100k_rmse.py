"""Rating accuracy of ``recsys train`` on real MovieLens 100K: the five u1..u5 folds.

    python benchmarks/ml100k_rmse.py --data /tmp/ml/ml-100k --root /tmp/ml100k-bench \
        [--folds 5] [--set train.dim=128 --set train.l2=0.03 ...] [--leave-last]
        [--split temporal --test-fraction 0.2]

Each fold ``k`` (u{k}.base as train, u{k}.test as test, 5% of train carved out as validation for
early stopping) is prepared once with recsys's own ``prepare`` (``--split given``) into ``--root``
under ``ds=2000-01-0k`` and reused by later runs. Every fold is then trained with
``recsys.train.step.run_train`` on the rating defaults of ``TrainConfig``
(``--objective rating``) plus the ``--set`` overrides, and the script prints per-fold test
RMSE / MAE, their means and the seconds each fold took.
``--folds 1`` runs u1 only (quick iterations).

``--leave-last`` instead prepares the whole ``u.data`` with the leave-last split (``ds=2000-02-01``)
and prints NDCG@k / hit_rate@k of the model next to the most-popular baseline.

``--split temporal --test-fraction 0.2`` prepares the whole ``u.data`` with one global time cutoff
(``ds=2000-04-01``; the last 10% of train before it is validation): most test users have no
train row. It prints RMSE / MAE of the model and of the biased baseline (``mu + b_u + b_i``) on
every test row, on the rows of cold users (no train row), on the rest, and on the rows of items
without a train row (``new-it``, when there are any; then also the same model with those items'
bias averaged over train rows, a diagnostic computed on its arrays).

The MovieLens files are read where they are; nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

from recsys import storage
from recsys.config import load_config
from recsys.errors import RecsysError

SPARK = {"master": "local[2]", "driver_memory": "2g", "shuffle_partitions": 2}
LEAVE_LAST_DS = "2000-02-01"
TEMPORAL_DS = "2000-04-01"


def fold_ds(k: int) -> str:
    return f"2000-01-0{k}"


def ensure_prepared(root: str, ds: str, source: dict[str, str], prepare: dict) -> None:
    """Prepare ``source`` into ``root`` under ``ds`` unless a complete run is already there."""
    try:
        storage.resolve(root, "prepared", ds)
        return
    except RecsysError:
        pass
    from recsys.prepare.job import run_prepare

    cfg = load_config(root=root, source=source, prepare=prepare, spark=SPARK)
    started = time.perf_counter()
    run_prepare(cfg, ds=ds)
    print(f"prepared {source['input']} -> ds={ds} in {time.perf_counter() - started:.0f}s")


def train(root: str, ds: str, overrides: list[str]) -> tuple[dict, float]:
    """Train on the prepared run of ``ds``; returns the model manifest and wall seconds."""
    from recsys.train.step import run_train

    # The rating models (the default objective is ranking, which has no RMSE).
    cfg = load_config(overrides=["train.objective=rating", *overrides], root=root, spark=SPARK)
    started = time.perf_counter()
    result = run_train(cfg, ds=ds, prepared_ds=ds)
    return result.manifest, time.perf_counter() - started


def run_folds(args: argparse.Namespace) -> None:
    data = Path(args.data)
    rmses, maes, secs = [], [], []
    for k in range(1, args.folds + 1):
        ds = fold_ds(k)
        source = {"input": str(data / f"u{k}.base"), "test_input": str(data / f"u{k}.test")}
        ensure_prepared(args.root, ds, source, {"split": "given", "val_fraction": 0.05})
        manifest, seconds = train(args.root, ds, args.set)
        test = manifest.metrics.test
        training = manifest.training
        rmses.append(test["rmse"])
        maes.append(test["mae"])
        secs.append(seconds)
        print(
            f"u{k}: rmse {test['rmse']:.4f}  mae {test['mae']:.4f}  "
            f"epochs {training.epochs_run}  {seconds:.0f}s",
            flush=True,
        )
    print(
        f"mean over {args.folds} fold(s): rmse {statistics.mean(rmses):.4f}  "
        f"mae {statistics.mean(maes):.4f}  {statistics.mean(secs):.0f}s per fold  "
        f"[{' '.join(args.set) or 'defaults'}]"
    )


def run_leave_last(args: argparse.Namespace) -> None:
    source = {"input": str(Path(args.data) / "u.data")}
    ensure_prepared(args.root, LEAVE_LAST_DS, source, {"split": "leave-last"})
    manifest, seconds = train(args.root, LEAVE_LAST_DS, args.set)
    metrics = manifest.metrics
    k = manifest.train.k
    model, pop = metrics.test, metrics.baselines["most_popular"]
    print(f"leave-last on u.data, {seconds:.0f}s [{' '.join(args.set) or 'defaults'}]")
    print(f"{'':14s}{'ndcg@' + str(k):>10s}{'hit_rate@' + str(k):>13s}")
    for name, m in (("model", model), ("most_popular", pop)):
        print(f"{name:14s}{m[f'ndcg@{k}']:10.4f}{m[f'hit_rate@{k}']:13.4f}")


def weighted_new_items(model, train_rows):
    """A copy of ``model`` whose items without a train row carry the item bias averaged over the
    train rows (the bias of a typical rated item) instead of over the trained items (the bias of
    a typical catalogue item: mostly rarely rated, lower rated films)."""
    import numpy as np

    from recsys import schema as S
    from recsys.artifact import Scorer

    arrays = dict(model.arrays)
    rows = np.bincount(train_rows[S.ITEM_IDX], minlength=arrays["item_bias"].size)
    bias = arrays["item_bias"].copy()
    bias[rows == 0] = np.average(bias, weights=rows)
    arrays["item_bias"] = bias
    return Scorer(arrays)


def run_temporal(args: argparse.Namespace) -> None:
    import numpy as np

    from recsys import schema as S
    from recsys.artifact import Scorer
    from recsys.evaluate.baselines import BiasedBaseline
    from recsys.evaluate.rating import mae, rmse
    from recsys.splits import load_split

    source = {"input": str(Path(args.data) / "u.data")}
    prepare = {"split": "temporal", "test_fraction": args.test_fraction}
    ensure_prepared(args.root, TEMPORAL_DS, source, prepare)
    manifest, seconds = train(args.root, TEMPORAL_DS, args.set)
    prepared = manifest.prepared.folder
    n_users, n_items = manifest.dims.users, manifest.dims.items
    train_rows, test = load_split(prepared, "train"), load_split(prepared, "test")
    u, i, r = (test[c].to_numpy() for c in (S.USER_IDX, S.ITEM_IDX, S.RATING))
    cold = ~np.isin(u, train_rows[S.USER_IDX].unique())
    new_item = ~np.isin(i, train_rows[S.ITEM_IDX].unique())
    model = Scorer.load(Path(storage.resolve(args.root, "models", TEMPORAL_DS)) / "arrays.npz")
    biased = BiasedBaseline().fit(train_rows, n_users, n_items)
    preds = {"model": model.predict(u, i), "biased baseline": biased.predict(u, i)}
    if new_item.any():  # the same arrays, items without a train row at the row-weighted bias
        preds["model, new-item bias by rows"] = weighted_new_items(model, train_rows).predict(u, i)
    print(
        f"temporal {args.test_fraction:g} on u.data: {len(test):,} test rows of "
        f"{len(np.unique(u)):,} users, {np.count_nonzero(cold):,} rows of "
        f"{len(np.unique(u[cold])):,} cold users, {np.count_nonzero(new_item):,} rows of "
        f"{len(np.unique(i[new_item])):,} items without a train row; model {seconds:.0f}s, "
        f"{manifest.training.epochs_run} epochs [{' '.join(args.set) or 'defaults'}]"
    )
    print(
        f"{'':30s}"
        + "".join(
            f"{h:>13s}"
            for h in ("rmse", "mae", "cold rmse", "cold mae", "warm rmse", "warm mae")
            + (("new-it rmse", "new-it mae") if new_item.any() else ())
        )
    )
    parts = (slice(None), cold, ~cold) + ((new_item,) if new_item.any() else ())
    for name, p in preds.items():
        cells = [f(r[m], p[m]) for m in parts for f in (rmse, mae)]
        print(f"{name:30s}" + "".join(f"{c:13.4f}" for c in cells), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/ml/ml-100k", help="the ml-100k folder")
    parser.add_argument("--root", default="/tmp/ml100k-bench", help="recsys storage root")
    parser.add_argument("--folds", type=int, default=5, choices=range(1, 6), help="u1..u<n>")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. train.dim=128"
    )
    parser.add_argument(
        "--leave-last", action="store_true", help="top-N metrics on u.data, leave-last split"
    )
    parser.add_argument(
        "--split",
        choices=["given", "temporal"],
        default="given",
        help="temporal: the whole u.data, one global time cutoff (cold users)",
    )
    parser.add_argument("--test-fraction", type=float, default=0.2, help="with --split temporal")
    parser.add_argument("--verbose", action="store_true", help="log recsys's INFO messages")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        if args.split == "temporal":
            run_temporal(args)
        elif args.leave_last:
            run_leave_last(args)
        else:
            run_folds(args)
    except RecsysError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
