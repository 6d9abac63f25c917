"""spark-submit entry point of the scoring step.

    spark-submit --py-files dist/recsys.zip jobs/score.py --root var --top 10

Takes the same options as ``recsys score``; spark-submit's --master and memory flags win over the
config's Spark settings. Executors need numpy and pyarrow, never TensorFlow.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from recsys.cli import main as recsys_main

    return recsys_main(["score", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
