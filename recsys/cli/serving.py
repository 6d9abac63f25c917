"""``recsys export | serve``: the published night where applications read it."""

from __future__ import annotations

import argparse

from recsys.cli.common import common_options
from recsys.config import load_config


def register(sub) -> None:
    ex = sub.add_parser(
        "export", help="load the published table into PostgreSQL or Redis as a new generation"
    )
    ex.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="postgresql://user@host:port/db or redis://host:port/n (a password not in the URL: "
        "$RECSYS_STORE_PASSWORD)",
    )
    ex.add_argument(
        "--ds", default=None, help="the night to export (default: recommendations/_LATEST)"
    )
    ex.add_argument("--run", default=None, help="a run id of --ds (default: its latest)")
    ex.add_argument("--keep", type=int, default=3, help="generations kept for rollback (3)")
    ex.add_argument(
        "--grace",
        type=int,
        default=3600,
        help="Redis: seconds an old generation stays readable before it expires (3600)",
    )
    ex.add_argument(
        "--rollback", action="store_true", help="make the previous kept generation current"
    )
    common_options(ex)
    ex.set_defaults(handler=cmd_export)

    sv = sub.add_parser("serve", help="an HTTP endpoint over an exported store")
    sv.add_argument("--from", dest="store", required=True, metavar="URL", help="the store URL")
    sv.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port (8000)")
    sv.add_argument("-v", "--verbose", action="count", default=0)
    sv.set_defaults(handler=cmd_serve)


def cmd_export(args: argparse.Namespace) -> dict:
    from recsys.export import export, rollback
    from recsys.export.stores import shown

    if args.rollback:
        out = rollback(args.to)
        print(f"{shown(args.to)}: generation {out['generation']} ({out['model_version']}, "
              f"ds={out['ds']}) is current again")  # fmt: skip
        return out
    cfg = load_config(args.config, args.overrides, root=args.root)
    out = export(args.to, cfg.root, args.ds, args.run, args.keep, cfg.move_latest_backwards,
                 args.grace)  # fmt: skip
    if out["generation"] is None:
        state = f"not loaded: ds={out['ds']} is older than the current generation's"
    elif out["switched"]:
        state = f"generation {out['generation']} is current"
    else:
        state = f"generation {out['generation']} loaded, current unchanged"
    print(f"{shown(args.to)}: {out['model_version']} (ds={out['ds']}, {out['rows']:,} rows, "
          f"{out['users']:,} users): {state}")  # fmt: skip
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    from recsys.serving.http import serve

    serve(args.store, args.host, args.port)
    return 0


def print_store_list(url: str, user: str) -> None:
    """``recsys recommend --from URL``: the user's list from the store, as from the root."""
    from rich.console import Console
    from rich.table import Table

    from recsys.serving import open_store

    store = open_store(url)
    try:
        rows = store.recommend(user, n=1_000)
    finally:
        store.close()
    title = f"user {user}: {rows[0].model_version} ({rows[0].ds})" if rows else f"user {user}"
    table = Table(title=title)
    for col in ("rank", "title", "item id", "score", "source"):
        table.add_column(col, justify="right" if col in ("rank", "score") else "left")
    for r in rows:
        table.add_row(str(r.rank), str(r.title), str(r.item_id), f"{r.score:.4f}", r.source)
    Console().print(table)
