"""The installed Spark Python side matches the JVM side, and pandas UDFs run.

apache-airflow-providers-apache-spark pulls ``pyspark-client``, whose files overwrite pyspark's;
a mismatch shows up as ``UserDefinedPythonFunction ... does not exist`` in the first pandas UDF.
"""

from __future__ import annotations

import importlib.metadata

import pandas as pd


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
