"""spark-submit entry point of the scoring step.

    spark-submit --py-files dist/recsys.zip jobs/score.py --root var --top 10

Takes the same options as ``recsys score``; spark-submit's --master and memory flags win over the
config's Spark settings. Executors need numpy and pyarrow, never TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from recsys.cli.common import run_job
    from recsys.cli.score import add_score_arguments, cmd_score

    return run_job("score", add_score_arguments, cmd_score, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
