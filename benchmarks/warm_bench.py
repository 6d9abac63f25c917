"""Warm start and refit modes on two nights of a log: time, epochs and quality.

    python benchmarks/warm_bench.py --shape ml-1m --work /tmp/warm-bench      # ~15-20 min, 2 cores
    python benchmarks/warm_bench.py --users 300 --items 200 --ratings 20000  # a smoke run
    python benchmarks/warm_bench.py --data /tmp/ml/ml-100k --later user --skip "cold + full" \
        --skip "cold + continue" --refit-scales 0.5 0.25 --work /tmp/warm-100k  # real time order

The log (``--data``: a MovieLens folder or ratings file, read where it is; else a synthetic log of
``--shape``, ``recsys data synth``) sorted by time makes three nights: night 1, night 2 = night 1
+ the next ``--new`` share of rows (with users and items that night 1 never saw; on a synthetic
log some items are moved into it when the tail has too few), and later rows that are never
trained on. ``--later time`` (the default): the last ``--future`` share of the log, the users'
next items after night 2. ``--later user``: every user's newest row, so each user with a history
is asked for their next item (on a real log most rows of the last days come from users never seen
before); on MovieLens that row is mostly of the same sitting as the ones before it. ``--later
session``: the rows of every user's last sitting that began more than ``--gap`` seconds after the
one before (a user coming back, as a nightly sees them). ``--drop-last N`` first removes every
user's N newest rows: another split of the same log. Both nights are prepared as the nightly does
(leave-last). Night 1 trains the model that night 2 starts from; on night 2 the variants are

    cold + full       train from random rows, refit from scratch on every split
    cold + continue   the same cold model, refit by training it on val + test only
    warm + full       train from night 1's model (rows by original id), full refit
    warm + continue   the same warm model, refit on val + test only (the nightly's default)

``--refit-scales`` and ``--refit-epochs`` run each continue refit once per step
(``train.refit_lr_scale``) and epoch count (``train.refit_epochs``). For each:
wall time and epochs of train and refit, test NDCG@10 of the evaluated model (its manifest), and
NDCG@10 on the later rows of the evaluated model (what serving it without a refit gives) and of
the refit model (candidates: every item the user did not rate up to night 2), with the popularity
list for scale. The table is also written to ``<work>/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys import storage
from recsys.artifact import Scorer
from recsys.config import load_config
from recsys.data.formats import FormatSpec, Located, locate
from recsys.data.synth import RATINGS_HEADER, SHAPES, shape_from_counts, synthesize
from recsys.errors import RecsysError
from recsys.evaluate.baselines import MostPopular
from recsys.evaluate.protocol import RankingTask
from recsys.lineage import original_ids

NIGHT1, NIGHT2 = "2026-07-01", "2026-07-02"
COLUMNS = RATINGS_HEADER.split(",")  # userId, movieId, rating, timestamp
VARIANTS = ("cold + full", "cold + continue", "warm + full", "warm + continue")


def read_log(located: Located) -> pd.DataFrame:
    """The ratings of a MovieLens file as a frame of ``COLUMNS``, sorted by time."""
    spec = located.spec
    if not spec.text:
        raise SystemExit(f"--data {located.ratings}: a MovieLens ratings file or folder, please")
    log = pd.read_csv(
        located.ratings,
        sep=spec.sep,
        header=0 if spec.header else None,
        names=COLUMNS,
        usecols=range(len(COLUMNS)),
        engine="c" if len(spec.sep) == 1 else "python",
    )
    return log.sort_values(["timestamp", "userId", "movieId"], kind="stable", ignore_index=True)


def newest(log: pd.DataFrame, n: int) -> pd.Series:
    """Mask of every user's ``n`` newest rows of a log sorted by time."""
    return log.groupby("userId").cumcount(ascending=False) < n


def last_session(log: pd.DataFrame, gap: int) -> pd.Series:
    """Mask of every user's rows after their last pause of more than ``gap`` seconds (none for
    a user who rated everything in one sitting)."""
    pause = log.groupby("userId").timestamp.diff() > gap
    session = pause.groupby(log.userId).cumsum()
    return (session == session.groupby(log.userId).transform("max")) & (session > 0)


def make_nights(log: pd.DataFrame, args: argparse.Namespace, min_new: int):
    """The time-sorted log cut into nights 1 and 2 and the later rows (pandas frames)."""
    log = log[~newest(log, args.drop_last)].reset_index(drop=True)
    if args.later in ("user", "session"):
        last = newest(log, 1) if args.later == "user" else last_session(log, args.gap)
        later, log = log[last], log[~last].reset_index(drop=True)
        cut2 = len(log)
    else:
        cut2 = len(log) - max(1, round(args.future * len(log)))
    cut1 = cut2 - max(1, round(args.new * len(log)))
    # The nights end at times, so rows moved into night 2 below stay out of night 1.
    t1 = int(log.timestamp[cut1])
    t2 = int(log.timestamp[cut2]) if cut2 < len(log) else int(log.timestamp.max()) + 1
    rng = np.random.default_rng(args.seed)
    # Too few items first rated in night 2's rows: move every earlier row of the least rated
    # items (like a new release's first ratings) to night 2's times, so the warm start meets new
    # items as a real catalogue brings them.
    before = log[log.timestamp < t2]
    fresh = set(before.movieId[before.timestamp >= t1]) - set(before.movieId[before.timestamp < t1])
    moved: list[int] = []
    if len(fresh) < min_new:
        counts = before.movieId.value_counts().sort_values(kind="stable")
        moved = counts[(counts >= 3) & ~counts.index.isin(list(fresh))].index[
            : min_new - len(fresh)
        ]
        rows = before.index[before.movieId.isin(moved)]
        log.loc[rows, "timestamp"] = rng.integers(t1, t2, len(rows))
    night1, night2 = log[log.timestamp < t1], log[log.timestamp < t2]
    if args.later == "time":
        later = log[log.timestamp >= t2]
    new_users = len(set(night2.userId) - set(night1.userId))
    new_items = len(set(night2.movieId) - set(night1.movieId))
    added = len(night2) - len(night1)
    print(
        f"night 1: {len(night1):,} rows; night 2: +{added:,} rows with {new_users} new users and "
        f"{new_items} new items ({len(moved)} moved in); later rows: {len(later):,} of "
        f"{later.userId.nunique():,} users"
    )
    return night1, night2, later


def write_log(frame: pd.DataFrame, located: Located, dest: Path) -> Path:
    """``frame`` as a ratings file of the source's own format, its item file beside it."""
    spec: FormatSpec = located.spec
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / located.ratings.name
    if len(spec.sep) == 1:
        frame[COLUMNS].to_csv(path, sep=spec.sep, header=bool(spec.header), index=False)
    else:  # ml-1m's "::"
        lines = frame[COLUMNS].astype(str).agg(spec.sep.join, axis=1)
        path.write_text("".join(f"{line}\n" for line in lines))
    if located.items is not None:
        shutil.copy(located.items, dest / located.items.name)
    return dest


class Later:
    """The later rows of users and items night 2 knows, as ranking tasks over night 2's prepared
    run (every item a user did not rate up to night 2 a candidate), built once for every model
    the table ranks: all later rows, and those of the users new on night 2 (``fresh``)."""

    def __init__(self, prepared: Path, later: pd.DataFrame, fresh: pd.Series, k: int = 10):
        from recsys.splits import load_split

        users = pd.Index(original_ids(prepared, "users", S.USER_IDX, S.USER_ID))
        items = pd.Index(original_ids(prepared, "items", S.ITEM_IDX, S.ITEM_ID))
        u, i = users.get_indexer(later.userId), items.get_indexer(later.movieId)
        known = (u >= 0) & (i >= 0)
        held = pd.DataFrame({S.USER_IDX: u[known], S.ITEM_IDX: i[known]})
        self.seen = pd.concat([load_split(prepared, s) for s in S.SPLITS], ignore_index=True)
        self.shape, self.k = (len(users), len(items)), k
        new = fresh.to_numpy()[known]
        self.tasks = {
            name: RankingTask.build(self.seen, rows, *self.shape)
            for name, rows in (("all", held), ("new users", held[new]))
            if len(rows)
        }

    def ndcg(self, model_dir: Path | None, rows: str = "all") -> float | None:
        """NDCG@k of the model run (None: the popularity list) on ``rows``; None without any."""
        if rows not in self.tasks:
            return None
        if model_dir is None:
            score = MostPopular().fit(self.seen, *self.shape).score_block
        else:
            score = Scorer.load(model_dir / "arrays.npz").rank_scores
        task = self.tasks[rows]
        return task.metrics(task.recommend(score, self.k), self.k)[f"ndcg@{self.k}"]


def nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def timed_train(cfg, ds, run, prepared_run=None, refit_of=None):
    from recsys.train.step import run_train

    started = time.perf_counter()
    result = run_train(cfg, ds, run, ds if prepared_run else None, prepared_run, refit_of)
    seconds = time.perf_counter() - started
    print(f"{time.strftime('%H:%M:%S')} {ds} run={run}: {seconds:.1f} s", flush=True)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="a MovieLens folder or ratings file (instead of --shape)")
    parser.add_argument("--shape", default="ml-1m", choices=sorted(SHAPES))
    parser.add_argument("--users", type=int, help="a custom shape: users (with --items, --ratings)")
    parser.add_argument("--items", type=int)
    parser.add_argument("--ratings", type=int)
    parser.add_argument("--work", default="/tmp/warm-bench", help="synthetic data and the root")
    parser.add_argument("--new", type=float, default=0.02, help="share of rows night 2 adds")
    parser.add_argument("--later", default="time", choices=("time", "user", "session"),
                        help="the later rows: the log's last --future share, every user's "
                        "newest row, or every user's last sitting after a --gap pause")  # fmt: skip
    parser.add_argument("--gap", type=int, default=86_400, help="seconds (--later session)")
    parser.add_argument("--future", type=float, default=0.01, help="share of later rows (time)")
    parser.add_argument("--drop-last", type=int, default=0,
                        help="first remove every user's N newest rows (another split)")  # fmt: skip
    parser.add_argument("--min-new-items", type=int,
                        help="move items into night 2 up to this many new ones (default: 10 on a "
                        "synthetic log, 0 on --data)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", action="append", default=[], choices=VARIANTS,
                        help="leave out a variant (at the ml-25m shape the cold full refit "
                        "alone takes ~25 min)")  # fmt: skip
    parser.add_argument("--refit-scales", type=float, nargs="+",
                        help="run each continue refit at these train.refit_lr_scale values "
                        "(default: the configured one)")  # fmt: skip
    parser.add_argument("--refit-epochs", type=int, nargs="+",
                        help="... and these train.refit_epochs values")  # fmt: skip
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="train.KEY=VALUE for every training run")  # fmt: skip
    args = parser.parse_args()

    work = Path(args.work)
    if args.data:
        try:
            source = locate(args.data)
        except RecsysError as e:
            raise SystemExit(f"--data: {e}") from None
    else:
        custom = args.users and args.items and args.ratings
        shape = shape_from_counts(args.users, args.items, args.ratings) if custom else args.shape
        synth = work / "synth"
        if not (synth / "ratings.csv").is_file():
            synthesize(synth, shape, seed=args.seed)
        source = locate(synth)
    min_new = args.min_new_items if args.min_new_items is not None else 0 if args.data else 10
    root = work / "var"
    shutil.rmtree(root, ignore_errors=True)
    night1, night2, later = make_nights(read_log(source), args, min_new)

    from recsys.prepare.job import run_prepare

    for ds, run, frame in ((NIGHT1, "night1", night1), (NIGHT2, "night2", night2)):
        logs = write_log(frame, source, work / f"log-{run}")
        cfg = load_config(root=str(root), source={"input": str(logs)}, spark={"master": "local[2]"})
        run_prepare(cfg, ds, run)
    prepared = storage.resolve(str(root), "prepared", NIGHT2, "night2")

    def config(**train):
        cfg = load_config(overrides=args.overrides, root=str(root))
        return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **train))

    defaults = config().train
    grid = [
        (scale, epochs)
        for scale in args.refit_scales or [defaults.refit_lr_scale]
        for epochs in args.refit_epochs or [defaults.refit_epochs]
    ]
    timed_train(config(), NIGHT1, "night1", "night1")  # what night 2 warm-starts from
    # The warm run first: nothing is published, so it starts from models/_LATEST (night 1).
    models = {}
    if any(v.startswith("warm") and v not in args.skip for v in VARIANTS):
        models["warm"] = timed_train(config(warm_start=True), NIGHT2, "warm", "night2")
        assert models["warm"][0].manifest.training.warm_start.source
    if any(v.startswith("cold") and v not in args.skip for v in VARIANTS):
        models["cold"] = timed_train(config(), NIGHT2, "cold", "night2")
    fresh = later.userId.isin(set(night2.userId) - set(night1.userId))  # users new on night 2
    ranked = Later(prepared, later, fresh)
    unrefitted = {  # each evaluated model once, however many refits of it the table has
        start: (ranked.ndcg(model.path), ranked.ndcg(model.path, "new users"))
        for start, (model, _) in models.items()
    }
    rows = []
    for name in VARIANTS:
        if name in args.skip:
            continue
        start, mode = name.split(" + ")
        evaluated, train_s = models[start]
        for scale, epochs in grid if mode == "continue" else [(None, None)]:
            step = {"refit_lr_scale": scale, "refit_epochs": epochs} if scale else {}
            label = f" x{scale:g}, {epochs} ep" if len(grid) > 1 and scale else ""
            run = f"{evaluated.path.name[4:]}-{mode}" + (f"-{scale:g}-{epochs}" if scale else "")
            refit, refit_s = timed_train(
                config(refit_mode=mode, **step), NIGHT2, run, refit_of=evaluated.path
            )
            rows.append(
                {
                    "variant": name + label,
                    "train_s": round(train_s, 1),
                    "fit_s": round(evaluated.manifest.training.elapsed_seconds[-1], 1),
                    "train_epochs": evaluated.manifest.training.epochs_run,
                    "test_ndcg": evaluated.manifest.metrics.test_metric("ndcg@10"),
                    "later_ndcg_evaluated": unrefitted[start][0],
                    "later_ndcg_new_users": unrefitted[start][1],
                    "refit_s": round(refit_s, 1),
                    "refit_epochs": refit.manifest.training.epochs_run,
                    "later_ndcg_refit": ranked.ndcg(refit.path),
                }
            )
    popular = ranked.ndcg(None)
    header = (
        f"{'variant':<28} {'train s':>8} {'fit s':>7} {'epochs':>6} {'test NDCG@10':>12} "
        f"{'later, eval':>11} {'new users':>9} {'refit s':>8} {'epochs':>6} {'later, refit':>12}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for r in rows:
        print(
            f"{r['variant']:<28} {r['train_s']:>8.1f} {r['fit_s']:>7.1f} {r['train_epochs']:>6} "
            f"{r['test_ndcg']:>12.4f} {r['later_ndcg_evaluated']:>11.4f} "
            f"{nan_if_none(r['later_ndcg_new_users']):>9.4f} {r['refit_s']:>8.1f} "
            f"{r['refit_epochs']:>6} {r['later_ndcg_refit']:>12.4f}"
        )
    print(f"{'popularity':<28} {'':>8} {'':>7} {'':>6} {'':>12} {popular:>11.4f}")
    print("train s: the whole run_train (loading, training, evaluation, commit); fit s: training")
    print("with its validation; refit s: the whole refit")
    print("later: NDCG@10 on the rows after night 2, every item not rated by then a candidate;")
    print("new users: the same, for the later rows of users first seen on night 2")
    if "warm" in models:
        fold_in = models["warm"][0].manifest.training.warm_start.fold_in
        print("warm start:", json.dumps(fold_in))
    (work / "results.json").write_text(json.dumps({"rows": rows, "popular": popular}, indent=2))


if __name__ == "__main__":
    main()
