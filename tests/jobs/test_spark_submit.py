"""The prepare job run the ways a cluster user runs it: spark-submit, and a standalone cluster.

``recsys prepare`` starts its own JVM; a cluster user instead ships the package as a zip with
``--py-files`` and lets spark-submit own the JVM, the master and the memory. Those paths break in
ways the in-process tests never see (a module missing from the zip, a path that only exists on the
driver, a setting applied after the JVM started), so these tests run the real commands.

The spark-submit tests run Python through a wrapper that starts the venv's interpreter with ``-S``
and the venv's site-packages on PYTHONPATH: every dependency is importable, but the editable
install of recsys (a ``.pth`` import hook that works from any working directory) is not. The job
can therefore only import recsys from the zip, which is what these tests are for.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow.dataset as pads
import pytest
import sparkproc
from sparkproc import BIN, REPO, SUBMIT_TIMEOUT, Cluster, spark_env

from recsys import storage

JOB = REPO / "jobs" / "prepare.py"
DS = "2026-01-02"

N_USERS, N_ITEMS, PER_USER = 6, 12, 10
N_GOOD = N_USERS * PER_USER
BAD_LINES = ["3,5,9.5,1700000000"]  # rating above the 0.5-5 scale: quarantined, not dropped
# leave-last with the defaults (1 test + 1 validation row per user); every user has 10 rows.
EXPECTED_COUNTS = {"train": N_GOOD - 2 * N_USERS, "val": N_USERS, "test": N_USERS}
# One bad row in 61 is above the default 1% reject limit, so the job is told to accept it.
JOB_ARGS = ["--split", "leave-last", "--max-reject-fraction", "0.05", "--ds", DS]


# --------------------------------------------------------------------------------------------
# Input, package and environment


def _write_ml_csv(folder: Path) -> Path:
    """An ml-latest-small-shaped folder small enough that Spark's start-up dominates the run.

    User ``u`` rates the 10 items ``(u + k) % 12 + 1`` at strictly increasing timestamps, so
    leave-last has one obvious last (test) and second-to-last (validation) row per user.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"]
    ts = 1_600_000_000
    for user in range(1, N_USERS + 1):
        for k in range(PER_USER):
            ts += 3600
            item = (user + k) % N_ITEMS + 1
            rating = ((user * 7 + k * 3) % 10 + 1) / 2
            lines.append(f"{user},{item},{rating},{ts}")
    lines[20:20] = BAD_LINES
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"]
    for item in range(1, N_ITEMS + 1):
        title = f'"Movie {item}, The ({1990 + item})"' if item % 4 == 0 else f"Movie {item} (2001)"
        movies.append(f"{item},{title},{'Comedy|Drama' if item % 2 else 'Action'}")
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return folder


@pytest.fixture(scope="module")
def ml_input(tmp_path_factory) -> Path:
    """The tiny input, written once per module: every test reads it, none changes it."""
    return _write_ml_csv(tmp_path_factory.mktemp("input") / "ml-tiny")


# --------------------------------------------------------------------------------------------
# Checking the output


def _check_prepared(root: Path, context: str = "") -> dict:
    """Assert the run is complete, published and holds the expected users, items and splits."""
    folder = storage.latest(str(root), "prepared")
    manifest = storage.read_manifest(folder)
    pointer = json.loads((root / "prepared" / "_LATEST").read_text())
    assert pointer["ds"] == DS and pointer["run"] == manifest["run"], context
    assert (root / pointer["path"]).resolve() == folder.resolve(), context  # root-relative
    assert folder.parent.name == f"ds={DS}" and folder.name == f"run={manifest['run']}", context

    assert manifest["ds"] == DS and manifest["format"] == "ml-csv", context
    assert manifest["rows_read"] == N_GOOD + len(BAD_LINES), context
    assert manifest["quarantine"]["total"] == len(BAD_LINES), context
    assert manifest["quarantine"]["by_reason"] == {"rating_out_of_range": 1}, context
    assert manifest["duplicates_removed"] == 0 and manifest["kcore_removed"] == 0, context
    assert (manifest["n_users"], manifest["n_items"]) == (N_USERS, N_ITEMS), context
    assert manifest["counts"] == EXPECTED_COUNTS, context
    assert sum(manifest["counts"].values()) == (
        manifest["rows_read"] - manifest["quarantine"]["total"]
    ), context
    assert manifest["split"]["kind"] == "leave-last", context

    ratings = pads.dataset(folder / "ratings", format="parquet", partitioning="hive").to_table()
    assert ratings.num_rows == N_GOOD, context
    rows = ratings.to_pylist()
    last_ts = {}
    for row in rows:
        last_ts[row["user_idx"]] = max(last_ts.get(row["user_idx"], 0), row["ts"])
    test_rows = [r for r in rows if r["split"] == "test"]
    assert sorted(r["user_idx"] for r in test_rows) == list(range(N_USERS)), context
    assert all(r["ts"] == last_ts[r["user_idx"]] for r in test_rows), context
    return manifest


# --------------------------------------------------------------------------------------------
# 1. spark-submit --master local[2]


@pytest.mark.slow
def test_spark_submit_local(tmp_path, ml_input, package_zip, isolated_python):
    """The job runs under spark-submit with recsys coming only from the --py-files zip."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = tmp_path / "root"
    cmd = [
        str(BIN / "spark-submit"),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        "--py-files",
        str(package_zip),
        str(JOB),
        "--input",
        str(ml_input),
        "--root",
        str(root),
        *JOB_ARGS,
    ]
    result = sparkproc.run(cmd, spark_env(isolated_python), cwd, SUBMIT_TIMEOUT)
    print(f"spark-submit local[2]: {result.seconds:.1f}s")
    report = result.report()
    assert result.code == 0, report
    manifest = _check_prepared(root, report)
    import pyspark

    assert manifest["versions"]["spark"] == pyspark.__version__, report
    assert not (cwd / "var").exists(), "the job wrote under its working directory, not --root"


# --------------------------------------------------------------------------------------------
# 2. A standalone master and worker on loopback


@pytest.fixture
def standalone_cluster(tmp_path) -> Iterator[Cluster]:
    """A master and one worker (1 core, 1g) on loopback, killed on teardown."""
    with sparkproc.start_standalone_cluster(tmp_path, cores=1, memory="1g") as cluster:
        yield cluster


@pytest.mark.slow
def test_spark_submit_standalone(
    tmp_path, ml_input, package_zip, isolated_python, standalone_cluster
):
    """The job runs on a real master/worker: executors in another JVM, the zip shipped to them."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    root = tmp_path / "root"
    cmd = [
        str(BIN / "spark-submit"),
        "--master",
        standalone_cluster.url,
        "--py-files",
        str(package_zip),
        "--driver-memory",
        "1g",
        "--executor-memory",
        "1g",
        "--total-executor-cores",
        "1",
        "--conf",
        "spark.ui.enabled=false",
        str(JOB),
        "--input",
        str(ml_input),
        "--root",
        str(root),
        *JOB_ARGS,
    ]
    result = sparkproc.run(cmd, spark_env(isolated_python), cwd, SUBMIT_TIMEOUT)
    print(f"spark-submit standalone: {result.seconds:.1f}s")
    report = f"{result.report()}\n{standalone_cluster.log_text()}"
    standalone_cluster.check_not_starved(result, report)
    assert result.code == 0, report
    _check_prepared(root, report)

    # The master ran the application on its worker: the driver's log names the app id the master
    # gave it, the master lists that app as finished (once the driver disconnects, which can
    # trail spark-submit's exit slightly), and the worker's work dir holds the executor's logs.
    app_id = re.search(r"Connected to Spark cluster with app ID (\S+)", result.err)
    apps = standalone_cluster.completed_apps()
    state = standalone_cluster.state()
    assert len(apps) >= 1, f"master shows no completed application: {state}\n{report}"
    assert all(app["state"] == "FINISHED" for app in apps), f"{apps}\n{report}"
    if app_id:
        assert app_id.group(1) in [app["id"] for app in apps], f"{apps}\n{report}"
    executor_logs = standalone_cluster.executor_logs()
    assert executor_logs, f"the worker started no executor\n{report}"


# --------------------------------------------------------------------------------------------
# 3. jobs/prepare.py's main() in-process


@pytest.fixture(scope="module")
def job_module():
    """``jobs/prepare.py`` loaded by path: ``jobs/`` is a folder of scripts, not a package."""
    spec = importlib.util.spec_from_file_location("recsys_jobs_prepare", JOB)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_main_in_process(spark, tmp_path, ml_input, job_module):
    """``main(argv)`` reuses the active session (as under spark-submit) and writes a run."""
    root = tmp_path / "root"
    code = job_module.main(["--input", str(ml_input), "--root", str(root), *JOB_ARGS])
    assert code == 0
    manifest = _check_prepared(root)
    assert manifest["versions"]["spark"] == spark.version


def test_job_main_missing_input(tmp_path, job_module, capsys):
    """A wrong --input is a user error: status 2 and one sentence naming the path, no trace."""
    code = job_module.main(["--input", "/nonexistent", "--root", str(tmp_path), "--ds", DS])
    captured = capsys.readouterr()
    assert code == 2
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "/nonexistent" in lines[0] and "does not exist" in lines[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / "prepared").exists()
