"""spark-submit entry point of the prepare step.

    spark-submit --py-files dist/recsys.zip jobs/prepare.py --input data/ml-latest-small --root var

Takes the same options as ``recsys prepare``; spark-submit's --master and memory flags win over the
config's Spark settings (the JVM already exists when this file runs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def prepare(args: argparse.Namespace) -> dict:
    from recsys.cli.output import print_prepare_summary
    from recsys.cli.prepare import prepare_config
    from recsys.prepare.job import run_prepare

    result = run_prepare(prepare_config(args), args.ds, args.run)
    print_prepare_summary(result.manifest, result.path)
    return {"path": str(result.path), "ds": result.manifest.ds, "run": result.manifest.run}


def main(argv: Sequence[str] | None = None) -> int:
    from recsys.cli.common import common_options, run_handler, setup_logging
    from recsys.cli.prepare import add_prepare_arguments

    parser = argparse.ArgumentParser(prog="jobs/prepare.py", description=__doc__.split("\n")[0])
    add_prepare_arguments(parser)
    common_options(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.verbose)
    return run_handler("prepare", prepare, args)


if __name__ == "__main__":
    sys.exit(main())
