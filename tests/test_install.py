"""The installed Spark Python side matches the JVM side, and pandas UDFs run.

apache-airflow-providers-apache-spark pulls ``pyspark-client``, whose files overwrite pyspark's;
a mismatch shows up as ``UserDefinedPythonFunction ... does not exist`` in the first pandas UDF.
The gpu extra replaces train without a second TensorFlow, and a missing one is one sentence.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pandas as pd
import pytest


def test_python_and_jvm_sides_agree(spark):
    import pyspark

    assert pyspark.__version__ == spark.version
    assert importlib.metadata.version("pyspark") == spark.version


def test_pandas_udf_runs(spark):
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("double")
    def plus_half(v: pd.Series) -> pd.Series:
        return v + 0.5

    rows = spark.range(5).select(plus_half("id").alias("x")).collect()
    assert [r.x for r in rows] == [0.5, 1.5, 2.5, 3.5, 4.5]


def test_map_in_pandas_runs(spark):
    def double(batches):
        for frame in batches:
            yield frame.assign(id=frame["id"] * 2)

    out = spark.range(4).mapInPandas(double, "id long").collect()
    assert sorted(r.id for r in out) == [0, 2, 4, 6]


def _extra(name: str) -> list:
    """The requirements of one extra of pyproject.toml."""
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    return [Requirement(r) for r in pyproject["project"]["optional-dependencies"][name]]


@pytest.mark.parametrize(
    ("system", "machine", "expected"),
    [("linux", "x86_64", "tensorflow[and-cuda]"), ("linux", "aarch64", "tensorflow")],
)
def test_gpu_extra_never_installs_tensorflow_cpu(system, machine, expected):
    """gpu replaces train: one TensorFlow distribution per platform, never tensorflow-cpu."""
    env = {"sys_platform": system, "platform_machine": machine}
    chosen = [r for r in _extra("gpu") if r.marker is None or r.marker.evaluate(env)]
    tf = [r for r in chosen if r.name.startswith("tensorflow")]
    assert [f"{r.name}[{','.join(r.extras)}]" if r.extras else r.name for r in tf] == [expected]
    train = {str(r.specifier) for r in _extra("train") if r.name.startswith("tensorflow")}
    assert {str(r.specifier) for r in tf} == train  # the same version as train pins
    assert "tensorboard" in {r.name for r in chosen}


def _run_without_tensorflow(argv: list[str]) -> subprocess.CompletedProcess:
    """``recsys.cli.main(argv)`` in a process where tensorflow and keras cannot be imported."""
    code = (
        "import sys; sys.modules['tensorflow'] = sys.modules['keras'] = None; "
        "from recsys.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("command", [["train"], ["demo", "--offline"]])
def test_training_without_tensorflow_names_the_extra(tmp_path, command):
    argv = [*command, "--root", str(tmp_path / "var")]
    if command[0] == "demo":
        argv += ["--data-dir", str(tmp_path / "data")]
    proc = _run_without_tensorflow(argv)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"recsys {command[0]}: error: training needs TensorFlow, which is not installed: "
        "pip install 'recsys[train]' (or 'recsys[gpu]' for NVIDIA GPUs on Linux x86_64)"
    )
    assert not (tmp_path / "data").exists()  # demo said so before downloading or synthesising


def test_evaluate_needs_no_tensorflow(tmp_path):
    proc = _run_without_tensorflow(["evaluate", "--root", str(tmp_path)])
    assert proc.returncode == 2
    assert "no complete models run" in proc.stderr and "TensorFlow" not in proc.stderr
