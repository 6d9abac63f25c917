"""spark-submit entry point of the prepare step.

    spark-submit --py-files dist/recsys.zip jobs/prepare.py --input data/ml-latest-small --root var

Takes the same options as ``recsys prepare``; spark-submit's --master and memory flags win over the
config's Spark settings (the JVM already exists when this file runs).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from recsys.cli.common import run_job
    from recsys.cli.prepare import add_prepare_arguments, cmd_prepare

    return run_job("prepare", add_prepare_arguments, cmd_prepare, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
