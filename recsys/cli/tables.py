"""``recsys recommend | summary | retention``: reading the published tables, keeping them tidy."""

from __future__ import annotations

import argparse

from recsys.cli.common import common_options
from recsys.config import load_config


def register(sub) -> None:
    ret = sub.add_parser("retention", help="delete runs older than N days (never those in use)")
    ret.add_argument("--days", type=int, default=None, help="retention.days (14)")
    ret.add_argument("--ds", default=None, help="reference date (default: today, UTC)")
    ret.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    common_options(ret)
    ret.set_defaults(handler=cmd_retention)

    rec = sub.add_parser("recommend", help="print a user's published recommendations")
    rec.add_argument("--user", required=True, help="the user's original id")
    rec.add_argument(
        "--from",
        dest="store",
        default=None,
        metavar="URL",
        help="read an exported store (postgresql://... or redis://...) instead of the root",
    )
    common_options(rec)
    rec.set_defaults(handler=cmd_recommend)

    sm = sub.add_parser(
        "summary", help="tables, metrics and example lists of the published recommendations"
    )
    common_options(sm)
    sm.set_defaults(handler=cmd_summary)


def cmd_retention(args: argparse.Namespace) -> int:
    from recsys.retention import apply_retention

    cfg = load_config(args.config, args.overrides, root=args.root, retention={"days": args.days})
    out = apply_retention(cfg.root, cfg.retention.days, args.ds, args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for path in out["deleted"]:
        print(f"{verb} {path}")
    print(
        f"{verb} {len(out['deleted'])} runs older than {out['cutoff']} "
        f"({out['bytes_freed'] / 1e6:,.1f} MB); kept {len(out['kept_in_use'])} old runs in use"
    )
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from recsys.lookup import user_recommendations

    if args.store:
        from recsys.cli.serving import print_store_list

        print_store_list(args.store, args.user)
        return 0
    cfg = load_config(args.config, args.overrides, root=args.root)
    rows, manifest = user_recommendations(cfg.root, args.user)
    table = Table(title=f"user {args.user}: {manifest.model_version} ({manifest.ds})")
    for col in ("rank", "title", "item id", "score", "source"):
        table.add_column(col, justify="right" if col in ("rank", "score") else "left")
    for r in rows.itertuples(index=False):
        table.add_row(str(r.rank), str(r.title), str(r.item_id), f"{r.score:.4f}", r.source)
    Console().print(table)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from recsys.cli.output import print_summary

    cfg = load_config(args.config, args.overrides, root=args.root)
    print_summary(cfg.root, cfg.train.k)
    return 0
