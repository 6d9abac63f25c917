"""The ``recsys`` command: one subcommand per step, each a thin wrapper over one library call.

    recsys data download ml-latest-small --dest data/
    recsys data synth --shape ml-latest-small --dest data/synth
    recsys prepare --input data/ml-latest-small --root var/
    recsys demo            # download (or synthesise) + prepare + train, without Airflow
    recsys nightly         # the whole nightly DAG once, here (Airflow on SQLite): `make run`
    recsys export --to postgresql://app@db:5432/shop   # the published table where apps read it

Errors a user can cause print one sentence and exit with status 2. One module per command
group registers its subcommands (``register``); handlers parse, call the library, print.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from recsys import __version__
from recsys.cli import data, flow, prepare, score, serving, tables, train
from recsys.cli.common import BAD_INPUT, GATE_REFUSED, Parser, run_handler, setup_logging

__all__ = ["BAD_INPUT", "GATE_REFUSED", "build_parser", "main"]

GROUPS = (data, prepare, train, score, tables, serving, flow)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="recsys", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"recsys {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(getattr(args, "verbose", 0))
    return run_handler(args.command, args.handler, args)
