"""The evaluation package stays light: importable where neither Spark nor TensorFlow is."""

from __future__ import annotations

import subprocess
import sys


def test_evaluate_imports_neither_spark_nor_tensorflow():
    code = (
        "import sys, recsys.evaluate as e; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'tensorflow')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names():
    import recsys.evaluate as e

    for name in e.__all__:
        assert getattr(e, name) is not None
