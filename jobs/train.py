"""spark-submit entry point of the train step (and of the refit, with --refit).

    spark-submit --py-files dist/recsys.zip jobs/train.py --root var --set train.workers=2

Takes the same options as ``recsys train``; the training runs as a Spark barrier stage of
``train.workers`` tasks, one TensorFlow worker each (``recsys.train.launch.barrier``). Executors
need the ``train`` extra (TensorFlow); this driver does not.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from recsys.cli.common import run_job
    from recsys.cli.train import add_train_arguments, cmd_train_job

    return run_job("train", add_train_arguments, cmd_train_job, argv, __doc__)


if __name__ == "__main__":
    sys.exit(main())
