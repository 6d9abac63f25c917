"""``recsys prepare``: validate, clean, index and split a ratings log (Spark)."""

from __future__ import annotations

import argparse

from recsys.cli.common import common_options, fraction
from recsys.config import Config, load_config


def register(sub) -> None:
    prep = sub.add_parser("prepare", help="validate, clean, index and split a ratings log (Spark)")
    add_prepare_arguments(prep)
    common_options(prep)
    prep.set_defaults(handler=cmd_prepare)


def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``recsys prepare`` (shared with ``jobs/prepare.py``)."""
    p.add_argument(
        "--input", required=True, help="MovieLens folder, ratings file, or CSV/Parquet log"
    )
    p.add_argument(
        "--format",
        default=None,
        help="ml-100k | ml-1m | ml-10m | ml-csv (ml-latest*, ml-20m/25m/32m) | csv | parquet "
        "(default: detected from the folder)",
    )
    p.add_argument("--ds", default=None, help="run date YYYY-MM-DD (default: today in UTC)")
    p.add_argument("--run", default=None, help="run id (default: a UTC timestamp)")
    p.add_argument(
        "--split",
        default=None,
        choices=["random", "temporal", "leave-last", "return", "given", "stratified"],
        help="how to hold out rows (default: leave-last); return = each user's first row after "
        "their last pause of --gap; stratified = per-item shares, the Microsoft Recommenders "
        "benchmark protocol with --test-fraction 0.25 --val-fraction 0",
    )
    p.add_argument(
        "--gap", default=None, help="return: shortest pause before a return, e.g. 1d, 12h (1d)"
    )
    p.add_argument(
        "--test-fraction", type=fraction, default=None, help="random/temporal/stratified (0.2)"
    )
    p.add_argument(
        "--val-fraction", type=fraction, default=None, help="share of train to validation (0.1)"
    )
    p.add_argument(
        "--leave-last", type=int, default=None, help="leave-last: test rows per user (1)"
    )
    p.add_argument("--seed", type=int, default=None, help="random split seed (42)")
    p.add_argument("--test-input", default=None, help="test rows for --split given")
    p.add_argument("--min-user-ratings", type=int, default=None, help="k-core: users (0 = off)")
    p.add_argument("--min-item-ratings", type=int, default=None, help="k-core: items (0 = off)")
    p.add_argument(
        "--max-reject-fraction", type=float, default=None, help="fail above this share (0.01)"
    )
    p.add_argument(
        "--min-share",
        type=float,
        default=None,
        help="refuse an input with fewer rows, users or items than this share of the previous "
        "prepared run's (0.5; 0 = off)",
    )
    p.add_argument("--user-col", default=None, help="generic logs: user column (user_id)")
    p.add_argument("--item-col", default=None, help="generic logs: item column (item_id)")
    p.add_argument(
        "--rating-col", default=None, help="generic logs: rating column; '' = implicit (rating)"
    )
    p.add_argument("--ts-col", default=None, help="generic logs: timestamp column (timestamp)")


def prepare_config(args: argparse.Namespace) -> Config:
    """The config the prepare options describe (over --config and --set)."""
    return load_config(
        args.config,
        args.overrides,
        root=args.root,
        source={
            "input": args.input,
            "format": args.format,
            "test_input": args.test_input,
            "user_col": args.user_col,
            "item_col": args.item_col,
            "rating_col": args.rating_col,
            "ts_col": args.ts_col,
        },
        prepare={
            "split": args.split,
            "test_fraction": args.test_fraction,
            "val_fraction": args.val_fraction,
            "leave_last": args.leave_last,
            "gap": args.gap,
            "seed": args.seed,
            "min_user_ratings": args.min_user_ratings,
            "min_item_ratings": args.min_item_ratings,
            "max_reject_fraction": args.max_reject_fraction,
            "min_share": args.min_share,
        },
    )


def cmd_prepare(args: argparse.Namespace) -> dict:
    from recsys.cli.output import print_prepare_summary
    from recsys.prepare.job import run_prepare

    result = run_prepare(prepare_config(args), args.ds, args.run)
    print_prepare_summary(result.manifest, result.path)
    return {"path": str(result.path), "ds": result.manifest.ds, "run": result.manifest.run}
