"""spark-submit entry point of the scoring step.

    spark-submit --py-files dist/recsys.zip jobs/score.py --root var --top 10

Takes the same options as ``recsys score``; spark-submit's --master and memory flags win over the
config's Spark settings. Executors need numpy and pyarrow, never TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def score(args: argparse.Namespace) -> dict:
    from recsys.cli.output import print_score_result
    from recsys.config import load_config
    from recsys.score.job import run_score

    cfg = load_config(args.config, args.overrides, root=args.root)
    result = run_score(
        cfg,
        args.ds,
        args.run,
        args.model_ds,
        args.model_run,
        n=args.top,
        min_item_ratings=args.min_item_ratings,
        similar_items=args.similar_items,
    )
    print_score_result(result)
    return {"path": str(result.path), "ds": result.manifest.ds, "run": result.manifest.run}


def main(argv: Sequence[str] | None = None) -> int:
    from recsys.cli.common import common_options, run_handler, setup_logging
    from recsys.cli.score import add_score_arguments

    parser = argparse.ArgumentParser(prog="jobs/score.py", description=__doc__.split("\n")[0])
    add_score_arguments(parser)
    common_options(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.verbose)
    return run_handler("score", score, args)


if __name__ == "__main__":
    sys.exit(main())
