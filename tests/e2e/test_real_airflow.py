"""The nightly DAG under a real Airflow: PostgreSQL metadata, api-server, scheduler, dag-processor,
LocalExecutor, driven through the REST API as a person drives the UI.

One stack for the module (:mod:`airflow_stack`), the tiny taste-group data of ``tests/dags``, and
the steps in order, each its own test so that each says what went wrong:

a. a triggered run for ``D`` publishes a valid table;
b. clearing its ``score`` task with the downstream tasks publishes again, for ``D``;
c. clearing the whole run does too;
d. a run for ``D - 1`` (a backfill) leaves ``recommendations/_LATEST`` alone;
e. a downstream DAG scheduled on the ``recsys_recommendations`` Asset ran after the publish;
f. a half-sized input for ``D + 1`` fails at ``prepare``, without retry, and publishes nothing.

Steps b-f need only step a's run; each leaves no run active (``max_active_runs=1``).
Run alone: ``.venv/bin/python -m pytest tests/e2e/test_real_airflow.py -m slow -v``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from airflow_stack import AirflowStack, end_time, postgres_database, postgres_reachable

from recsys import storage
from recsys.manifests import ModelManifest, RecommendationsManifest
from recsys.nightly import LOCAL_SPARK
from recsys.score.publish import validate

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
DAG_FILE = REPO / "dags" / "recsys_nightly.py"
DOWNSTREAM_FILE = Path(__file__).resolve().parent / "dags" / "recsys_downstream.py"
DAG, DOWNSTREAM = "recsys_nightly", "recsys_downstream"
ASSET = "recsys_recommendations"

D = "2026-05-02"
BEFORE_D, AFTER_D = "2026-05-01", "2026-05-03"
# As tests/dags/test_nightly_run.py: small data learns in 10 epochs.
PARAMS = {"train_overrides": ["train.epochs=10"], "spark_driver_memory": "1g"}
RUN_TIMEOUT = 900  # one whole run takes ~2 min here; a hang should still end the test
# Users kept in the half-sized input: 48 of 120 (40%), clearly below the default share of 50%
# in rows and users alike (60 would sit exactly on the limit).
HALF_USERS = 48
# What prepare's refusal says about the shrunken input: a count, "below", a share in %.
REFUSAL = re.compile(r"(rows|users|items)\b.*\bbelow\b.*\d+\s*%")
# The DAG reads its schedule at parse time. Unpaused with @daily (catchup off), it would start a
# run for today at once, with default params, beside the test's own: triggered runs only.
NEVER_SOON = "none"
# Recsys retries a crash; one retry is enough to tell "failed without retry" from "will retry".
RETRIES = "1"
# Tables whose _LATEST only moves forward in ds (the step's own run folder goes in regardless).
POINTED = ("prepared", "models", "recommendations", "similar_items")


def _tinyml():
    spec = importlib.util.spec_from_file_location("tinyml", TESTS / "dags" / "tinyml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tinyml = _tinyml()
N_USERS = tinyml.N_USERS


@dataclass
class Published:
    run_id: str
    table: Path
    publish_end: float


@dataclass
class World:
    airflow: AirflowStack
    root: Path
    tiny: Path
    records: Path
    first: Published | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def conf(self, **more) -> dict:
        return {"root": str(self.root), "dataset": str(self.tiny), **PARAMS, **more}

    def need_first(self) -> Published:
        if self.first is None:
            pytest.skip("step a (the first run) did not publish; nothing to build on")
        return self.first

    def latest_pointer(self) -> str:
        return (self.root / "recommendations" / storage.LATEST).read_text()

    def pointers(self) -> dict[str, str | None]:
        """What every table's ``_LATEST`` names, as ``ds/run`` (None: not written)."""
        out = {}
        for table in POINTED:
            pointer = storage.read_pointer(self.root / table / storage.LATEST)
            out[table] = f"ds={pointer['ds']}/run={pointer['run']}" if pointer else None
        return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not postgres_reachable():
        pytest.fail(
            "PostgreSQL is not reachable on 127.0.0.1:5432; the real-Airflow test needs it "
            "(trust auth, user postgres)",
            pytrace=False,
        )
    base = tmp_path_factory.mktemp("real_airflow")
    root = base / "var"
    records = base / "downstream.jsonl"
    env = {
        "RECSYS_ROOT": str(root),
        "RECSYS_BIN": str(Path(sys.executable).parent / "recsys"),
        "RECSYS_DATA_DIR": str(base / "data"),
        "RECSYS_RETRIES": RETRIES,
        "RECSYS_SCHEDULE": NEVER_SOON,
        "RECSYS_SPARK_LOG_LEVEL": "WARN",
        "RECSYS_E2E_RECORDS": str(records),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "AIRFLOW_CONN_SPARK_DEFAULT": LOCAL_SPARK,
    }
    tiny = tinyml.write_tiny_movielens(base / "input" / "tiny")
    started = time.monotonic()
    with postgres_database() as database:
        airflow = AirflowStack(base, database, [DAG_FILE, DOWNSTREAM_FILE], env)
        try:
            airflow.start()
            airflow.wait_parsed([DAG, DOWNSTREAM])
            airflow.unpause(DAG)
            airflow.unpause(DOWNSTREAM)
            w = World(airflow, root, tiny, records)
            w.seconds["stack start"] = time.monotonic() - started
            yield w
        finally:
            leftover = airflow.stop()
    w.seconds["total"] = time.monotonic() - started
    print("\nreal-Airflow steps (s):", {k: round(v) for k, v in w.seconds.items()})
    assert not leftover, f"processes of the Airflow stack still alive after stop: {leftover}"


@contextlib.contextmanager
def _timed(world: World, step: str):
    started = time.monotonic()
    try:
        yield
    finally:
        world.seconds[step] = time.monotonic() - started


def _expect_success(world: World, run, what: str) -> None:
    """Fail with every task's state and the failed tasks' log tails; end the run first so that
    the next step's run is not held back by max_active_runs."""
    if run.state == "success":
        return
    world.airflow.mark_failed(run.dag_id, run.run_id)
    scheduled = [r["dag_run_id"] for r in world.airflow.runs(DAG) if r["run_type"] == "scheduled"]
    extra = f"\nscheduled runs interfered: {scheduled}" if scheduled else ""
    pytest.fail(f"{what}: {world.airflow.explain(run)}{extra}", pytrace=False)


def _check_table(folder: Path, ds: str) -> None:
    manifest = storage.read_manifest(folder)
    assert manifest["ds"] == ds and folder.parent.name == f"ds={ds}", (folder, manifest["ds"])
    assert validate(folder) == {"users": N_USERS, "rows": N_USERS * 10, "empty_lists": 0}, folder


def test_a_a_triggered_run_publishes_a_valid_table(world):
    airflow = world.airflow
    with _timed(world, "a: first run"):
        run_id = airflow.trigger(DAG, D, world.conf())
        run = airflow.wait_run(DAG, run_id, RUN_TIMEOUT)
    _expect_success(world, run, f"the first run for {D} did not succeed")
    assert all(s == "success" for s in run.task_states().values()), run.task_states()
    published = storage.latest(str(world.root), "recommendations")
    _check_table(published, D)
    # The storage run id is the Airflow run id made path-safe (first try: no suffix).
    assert published.name == f"run={storage.safe_run_id(run_id)}", (published, run_id)
    world.first = Published(run_id, published, end_time(run.tasks["publish"]))


def test_b_clearing_score_with_its_downstream_publishes_again(world):
    first = world.need_first()
    airflow = world.airflow
    with _timed(world, "b: clear score+downstream"):
        cleared = airflow.clear_tasks(DAG, first.run_id, ["score"], downstream=True)
        assert "score" in cleared and "publish" in cleared, cleared
        assert not {"source", "prepare", "train", "gate", "refit"} & set(cleared), cleared
        run = airflow.wait_run(DAG, first.run_id, RUN_TIMEOUT)
    _expect_success(world, run, "after clearing score and its downstream tasks, the run")
    assert run.tasks["score"]["try_number"] == 2, run.tasks["score"]
    assert run.tasks["prepare"]["try_number"] == 1, "clearing score re-ran prepare"
    published = storage.latest(str(world.root), "recommendations")
    _check_table(published, D)
    assert published != first.table, "the cleared score wrote no new table"


def test_b_then_clearing_prepare_alone_writes_a_new_prepared_run(world):
    """A cleared prepare (no downstream) re-runs into a run of its own; what is live stays."""
    first = world.need_first()
    airflow = world.airflow
    live = storage.latest(str(world.root), "recommendations")
    with _timed(world, "b2: clear prepare"):
        cleared = airflow.clear_tasks(DAG, first.run_id, ["prepare"], downstream=False)
        assert cleared == ["prepare"], cleared
        run = airflow.wait_run(DAG, first.run_id, RUN_TIMEOUT)
    _expect_success(world, run, "after clearing prepare alone, the run")
    assert run.tasks["prepare"]["try_number"] == 2, run.tasks["prepare"]
    prepared = storage.latest(str(world.root), "prepared")
    assert prepared.name == f"run={storage.safe_run_id(first.run_id)}.try2", prepared
    assert storage.read_manifest(prepared)["n_users"] == N_USERS
    assert storage.latest(str(world.root), "recommendations") == live
    _check_table(live, D)


def test_c_clearing_the_whole_run_publishes_again(world):
    first = world.need_first()
    airflow = world.airflow
    before = storage.latest(str(world.root), "recommendations")
    with _timed(world, "c: clear run"):
        airflow.clear_run(DAG, first.run_id)
        run = airflow.wait_run(DAG, first.run_id, RUN_TIMEOUT)
    _expect_success(world, run, "after clearing the whole run, the run")
    assert all(s == "success" for s in run.task_states().values()), run.task_states()
    assert run.tasks["source"]["try_number"] >= 2, run.tasks["source"]
    published = storage.latest(str(world.root), "recommendations")
    _check_table(published, D)
    assert published != before, "the re-run published no new table"


def test_d_a_backfill_of_the_previous_day_leaves_latest_alone(world):
    world.need_first()
    airflow = world.airflow
    pointers = world.pointers()
    with _timed(world, "d: backfill D-1"):
        # No refit: this step is about pointers, and a refit costs a third of a run here.
        run_id = airflow.trigger(DAG, BEFORE_D, world.conf(refit=False))
        run = airflow.wait_run(DAG, run_id, RUN_TIMEOUT)
    _expect_success(world, run, f"the backfill run for {BEFORE_D}")
    moved = {
        table: f"{before} -> {now}"
        for (table, before), now in zip(pointers.items(), world.pointers().values(), strict=True)
        if before != now
    }
    assert not moved, f"a run for {BEFORE_D} moved _LATEST backwards: {moved}"
    day = world.root / "recommendations" / f"ds={BEFORE_D}" / storage.LATEST
    assert day.is_file(), f"{day} was not written"
    table = storage.resolve(str(world.root), "recommendations", BEFORE_D)
    _check_table(table, BEFORE_D)
    # Param refit off: the branch skipped the refit, visibly, and score served train's model.
    states = run.task_states()
    assert states["refit"] == "skipped" and states["score"] == "success", states
    served = ModelManifest.read(RecommendationsManifest.read(table).model.folder)
    assert served.refit_of is None, served.refit_of


def test_e_the_downstream_dag_ran_after_the_first_publish(world):
    first = world.need_first()
    airflow = world.airflow
    events = airflow.asset_events(ASSET)
    assert events, (
        f"no event of the Asset {ASSET!r}: does a task of {DAG} have it as an outlet? "
        f"assets known: {[a['name'] for a in airflow.api('GET', '/api/v2/assets')['assets']]}"
    )
    deadline = time.monotonic() + 120  # the last event may have queued a run just now
    while True:
        runs = airflow.runs(DOWNSTREAM)
        done = [r for r in runs if r["state"] == "success"]
        if done and not [r for r in runs if r["state"] in ("queued", "running")]:
            break
        if time.monotonic() > deadline:
            break
        time.sleep(3)
    assert done, f"no successful run of {DOWNSTREAM}: {runs}"
    assert all(r["run_type"] == "asset_triggered" for r in done), done
    lines = world.records.read_text().splitlines() if world.records.exists() else []
    records = [json.loads(line) for line in lines]
    after = [
        (record, event)
        for record in records
        for event in record["events"]
        if record["ran_at"] >= first.publish_end
        and event["source_dag_id"] == DAG
        and event["source_run_id"] == first.run_id
        and event["asset"] == ASSET
    ]
    assert after, f"no record of a run after the publish of {first.run_id}: {records}"
    for _, event in after:
        extra = event["extra"]
        assert set(extra) >= {"ds", "run", "path"} and extra["ds"] == D, extra
        assert Path(extra["path"]).parent.name == f"ds={D}", extra
        assert storage.read_manifest(extra["path"])["ds"] == D, extra
    paths = {event["extra"]["path"] for _, event in after}
    assert str(first.table) in paths, (first.table, paths)


def _write_half(tiny: Path, dest: Path, max_user: int) -> Path:
    """The tiny data with only the ratings of users 1..max_user (movies unchanged)."""
    dest.mkdir(parents=True, exist_ok=True)
    header, *rows = (tiny / "ratings.csv").read_text().splitlines()
    kept = [r for r in rows if int(r.split(",", 1)[0]) <= max_user]
    (dest / "ratings.csv").write_text("\n".join([header, *kept]) + "\n")
    (dest / "movies.csv").write_text((tiny / "movies.csv").read_text())
    return dest


def test_f_a_half_sized_input_fails_at_prepare_without_retry(world, tmp_path):
    world.need_first()
    airflow = world.airflow
    half = _write_half(world.tiny, tmp_path / "half", HALF_USERS)
    pointer = world.latest_pointer()
    with _timed(world, "f: half-sized input"):
        run_id = airflow.trigger(DAG, AFTER_D, world.conf(dataset=str(half)))
        run = airflow.wait_task(DAG, run_id, "prepare", RUN_TIMEOUT)
        prepare = run.tasks.get("prepare", {})
        if prepare.get("state") != "failed":
            airflow.mark_failed(DAG, run_id)
            pytest.fail(
                f"prepare ended {prepare.get('state')} (try {prepare.get('try_number')}) on an "
                f"input of {HALF_USERS} of {N_USERS} users; it should fail without retry\n"
                + airflow.explain(run, ["prepare"]),
                pytrace=False,
            )
        assert prepare["try_number"] == 1, prepare
        log = airflow.task_log(DAG, run_id, "prepare", 1)
        assert REFUSAL.search(log), f"no refusal ({REFUSAL.pattern}) in the log:\n{log[-6000:]}"
        run = airflow.wait_run(DAG, run_id, RUN_TIMEOUT)
    assert run.state == "failed", airflow.explain(run)
    ran = {t for t, s in run.task_states().items() if s == "success"}
    assert not ran & {"train", "score", "publish"}, f"tasks after a refused prepare ran: {ran}"
    assert world.latest_pointer() == pointer, "a refused input moved recommendations/_LATEST"
