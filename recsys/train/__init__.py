"""Training: a prepared run in, a model run out.

Where to start reading: ``step`` is the pipeline step (``recsys train``: read the job, decide
where the run starts, train, export, evaluate, commit); ``loop`` is the training loop it calls
(plan the batches with ``plan``, build and compile the model, the callbacks, Keras ``fit``).
Around them, one home per concept:

* ``models/``: the model families (one module each, registered in ``recsys.families``);
  ``ranking`` the ranking loss; ``optim`` the row-sparse optimiser;
* ``data`` (batches) and ``parquet_rows`` (the files under them), ``runs`` (user runs);
* ``warm`` (where a run starts, and copying last night's rows) and ``foldin`` (new users);
* ``callbacks/``: validation, progress and the backup a killed run resumes from;
* ``launch/``: the Spark barrier stage, its TensorFlow worker process, the strategy.

Training needs TensorFlow, so importing this package first checks that it is installed
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
