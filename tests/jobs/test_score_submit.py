"""The scoring job run the ways a cluster user runs it: spark-submit local[2], and a standalone
master + worker, with recsys shipped only as the ``--py-files`` zip.

The prepared run and the model are built once, in-process (tiny data, 2 epochs); each test then
scores them with ``jobs/score.py`` under spark-submit and checks the committed table the way
``recsys publish`` does. Python workers run the isolated Python (no editable recsys) through
``sparkproc``'s import probe, which logs where each worker process imported ``recsys`` from: it
must be a copy of the ``--py-files`` zip that Spark shipped to the executor.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import sparkproc
from sparkproc import REPO, SPARK_SUBMIT, SUBMIT_TIMEOUT, Cluster, Finished, spark_env

from recsys import schema as S
from recsys import storage
from recsys.errors import RecsysError

pytest.importorskip("tensorflow")

JOB = REPO / "jobs" / "score.py"
TRAIN_DS, DS = "2026-03-01", "2026-03-02"
TOP = 5
COLD_USER = 999  # one held-out rating of an item nobody else rated: the model never saw them
IN_ZIP = "/recsys.zip/recsys/__init__.py"  # a zipimport's origin


@pytest.fixture(scope="module")
def trained_root(spark, tmp_path_factory) -> Path:
    """A storage root holding one prepared run (60 users x 40 items + a cold user) and a model
    trained on it, built in-process; the tests only read it and add recommendations runs."""
    from scoredata import trained_root as build

    cfg = build(tmp_path_factory.mktemp("score-submit"), TRAIN_DS, seed=0, cold_user=COLD_USER)
    return Path(cfg.root)


@pytest.fixture
def score_cluster(tmp_path) -> Iterator[Cluster]:
    with sparkproc.start_standalone_cluster(tmp_path / "cluster", cores=1, memory="1g") as c:
        yield c


def _submit(
    master_args: list[str], root: Path, run: str, package_zip: Path, python: Path, work: Path
) -> tuple[Finished, list[str]]:
    """spark-submit jobs/score.py; returns the run and where its Python workers got recsys."""
    cwd = work / "cwd"
    cwd.mkdir(parents=True)
    imports = work / "recsys-imports.log"
    cmd = [
        SPARK_SUBMIT,
        *master_args,
        "--conf",
        "spark.ui.enabled=false",
        *sparkproc.import_probe_conf(imports),
        "--py-files",
        str(package_zip),
        str(JOB),
        "--root",
        str(root),
        "--ds",
        DS,
        "--run",
        run,
        "--top",
        str(TOP),
        "--set",
        "spark.shuffle_partitions=2",
    ]
    result = sparkproc.run(cmd, spark_env(python), cwd, SUBMIT_TIMEOUT)
    assert not (cwd / "var").exists(), "the job wrote under its working directory, not --root"
    return result, sparkproc.recsys_imports(imports)


def _check_scored(root: Path, run: str, report: str) -> dict:
    """The run is committed (manifest last), covers every prepared user, passes publish's
    validation, and is not yet published (only ``recsys publish`` moves _LATEST)."""
    from recsys.score.publish import validate

    folder = storage.resolve(str(root), "recommendations", DS, run)
    assert storage.resolve(str(root), "recommendations", DS) == folder, report  # ds pointer
    manifest = storage.read_manifest(folder)
    assert manifest["run"] == run and manifest["ds"] == DS and manifest["top_n"] == TOP, report
    assert not list(folder.parent.glob("_staging-*")), report
    prepared = storage.resolve(str(root), "prepared")
    users = pq.read_table(prepared / "users").to_pandas()[S.USER_ID]
    table = pq.read_table(folder / "table").to_pandas()
    assert set(table[S.USER_ID]) == set(users), report  # every user present
    assert table.groupby(S.USER_ID).size().eq(TOP).all(), report
    assert set(table.loc[table[S.USER_ID] == COLD_USER, "source"]) == {"popular"}, report
    counts = validate(folder)
    assert counts == {"users": len(users), "rows": len(users) * TOP, "empty_lists": 0}, report
    assert manifest["rows"] == len(table), report
    with pytest.raises(RecsysError, match="no complete recommendations run"):
        storage.latest(str(root), "recommendations")
    return manifest


def _check_imports(imports: list[str], shipped_to: Path, report: str) -> None:
    """Python workers imported recsys, each from a copy of the zip under ``shipped_to``."""
    assert imports, f"no Python worker imported recsys\n{report}"
    for origin in imports:
        assert origin.endswith(IN_ZIP), f"recsys imported from {origin}\n{report}"
        assert Path(origin).is_relative_to(shipped_to), f"{origin} not under {shipped_to}"


@pytest.mark.slow
def test_score_submit_local(trained_root, package_zip, isolated_python, tmp_path):
    """local[2]: executors are threads of the driver's JVM, Python workers its children."""
    result, imports = _submit(
        ["--master", "local[2]", "--conf", f"spark.local.dir={tmp_path / 'local'}"],
        trained_root,
        "local",
        package_zip,
        isolated_python,
        tmp_path,
    )
    print(f"spark-submit score local[2]: {result.seconds:.1f}s")
    report = result.report()
    assert result.code == 0, report
    _check_scored(trained_root, "local", report)
    # local mode: the driver copies --py-files to <spark.local.dir>/spark-*/userFiles-*/.
    _check_imports(imports, tmp_path / "local", report)


@pytest.mark.slow
def test_score_submit_standalone(
    trained_root, package_zip, isolated_python, score_cluster, tmp_path
):
    """A master and one worker (1 core, 1g): executors in another JVM, the zip shipped to them."""
    result, imports = _submit(
        [
            "--master",
            score_cluster.url,
            "--driver-memory",
            "1g",
            "--executor-memory",
            "1g",
            "--total-executor-cores",
            "1",
        ],
        trained_root,
        "standalone",
        package_zip,
        isolated_python,
        tmp_path,
    )
    print(f"spark-submit score standalone: {result.seconds:.1f}s")
    report = f"{result.report()}\n{score_cluster.log_text()}"
    score_cluster.check_not_starved(result, report)
    assert result.code == 0, report
    _check_scored(trained_root, "standalone", report)
    apps = score_cluster.completed_apps()
    assert apps and all(app["state"] == "FINISHED" for app in apps), f"{apps}\n{report}"
    assert score_cluster.executor_logs(), f"the worker started no executor\n{report}"
    # The executor fetched its own copy of the zip into the worker's work dir.
    _check_imports(imports, score_cluster.work, report)
