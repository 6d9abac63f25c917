"""``recsys score | publish``: the top-N table of every user, then making it live."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.cli.common import common_options
from recsys.config import load_config


def register(sub) -> None:
    sc = sub.add_parser("score", help="top-N unseen items of every user (Spark, numpy kernels)")
    add_score_arguments(sc)
    common_options(sc)
    sc.set_defaults(handler=cmd_score)

    pub = sub.add_parser(
        "publish", help="validate a scored table and make it recommendations/_LATEST"
    )
    pub.add_argument("--ds", default=None, help="ds of the table (default: today, UTC)")
    pub.add_argument("--run", default=None, help="run id (default: the newest run of --ds)")
    pub.add_argument(
        "--min-share",
        type=float,
        default=None,
        help="refuse a table covering fewer users than this share of the live one's (0.5)",
    )
    pub.add_argument(
        "--result-file",
        default=None,
        help="also write the outcome (path, ds, run, users, rows, moved) as JSON to this file",
    )
    common_options(pub)
    pub.set_defaults(handler=cmd_publish)


def add_score_arguments(sc: argparse.ArgumentParser) -> None:
    """Options of ``recsys score`` (shared with ``jobs/score.py``)."""
    sc.add_argument("--ds", default=None, help="run date of the table (default: today, UTC)")
    sc.add_argument("--run", default=None, help="run id (default: a UTC timestamp)")
    sc.add_argument("--model-ds", default=None, help="model ds (default: models/_LATEST)")
    sc.add_argument("--model-run", default=None, help="model run id")
    sc.add_argument("--top", type=int, default=10, help="items per user (10)")
    sc.add_argument(
        "--extra",
        type=int,
        default=0,
        metavar="K",
        help="keep K more items per user than --top, so a read-time filter (recsys serve's "
        "exclude=) still leaves --top (0)",
    )
    sc.add_argument(
        "--min-item-ratings", type=int, default=0, help="never recommend rarer items (0 = off)"
    )
    sc.add_argument(
        "--similar-items",
        type=int,
        default=0,
        metavar="N",
        help="also write similar_items/: each item's N nearest items by embedding (0 = off)",
    )


def cmd_score(args: argparse.Namespace) -> dict:
    from recsys.cli.output import print_score_result
    from recsys.score.job import run_score

    cfg = load_config(args.config, args.overrides, root=args.root)
    result = run_score(
        cfg,
        args.ds,
        args.run,
        args.model_ds,
        args.model_run,
        n=args.top,
        extra=args.extra,
        min_item_ratings=args.min_item_ratings,
        similar_items=args.similar_items,
    )
    print_score_result(result)
    return {"path": str(result.path), "ds": result.manifest.ds, "run": result.manifest.run}


def cmd_publish(args: argparse.Namespace) -> dict:
    from recsys.score.publish import publish

    cfg = load_config(
        args.config, args.overrides, root=args.root, publish={"min_share": args.min_share}
    )
    out = publish(cfg.root, args.ds, args.run, cfg.publish.min_share, cfg.move_latest_backwards)
    if args.result_file:
        Path(args.result_file).write_text(json.dumps(out) + "\n")
    live = "" if out["moved"] else " (recommendations/_LATEST names a newer ds and stays)"
    empty = out.get("empty_lists", 0)
    empty = f", {empty:,} with an empty list (no unseen candidate)" if empty else ""
    print(f"published {out['path']}: {out['rows']:,} rows for {out['users']:,} users{empty}{live}")
    return out
