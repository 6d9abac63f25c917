"""Training: tf.data input from the prepared Parquet, models, strategy, training loop, export.

``data`` turns a prepared ``ratings/split=<name>/`` folder into batches for a custom train step
under ``tf.distribute``; the other modules build, train and export the models on top of it.

Every module here imports TensorFlow, so importing this package first checks that it is installed
(an optional extra) and otherwise raises one sentence naming the extra, which the command line
prints with exit status 2 instead of a ``ModuleNotFoundError`` traceback.
"""

import importlib.util

from recsys.errors import RecsysError

MISSING_TENSORFLOW = (
    "training needs TensorFlow, which is not installed: pip install 'recsys[train]' "
    "(or 'recsys[gpu]' for NVIDIA GPUs on Linux x86_64)"
)

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
    raise RecsysError(MISSING_TENSORFLOW)
