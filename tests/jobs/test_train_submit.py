"""Training on a loopback standalone cluster: jobs/train.py as a barrier stage of 2 workers.

One master and two workers of one core each (2 task slots), recsys only in the ``--py-files``
zip, Python without the editable install (see ``test_spark_submit``). Every Spark and TensorFlow
process is a child of a process group the tests start and stop by id.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sparkproc
from sparkproc import REPO, SPARK_SUBMIT, spark_env

from recsys import storage
from recsys.errors import RecsysError
from recsys.manifests import ModelManifest

pytestmark = [pytest.mark.slow, pytest.mark.spark]

HERE = Path(__file__).resolve().parent
PROBE = HERE / "barrier_probe.py"
JOB = REPO / "jobs" / "train.py"
DS = "2026-01-02"
# Two workers' float32 sums of the same rows in another order differ by ~1e-7 a step; 12 steps
# of lazy Adam / Adagrad keep that near 1e-7 (measured: 3e-8 for MirroredStrategy). The faults
# this guards against (a replica at another step, a gradient summed twice or not averaged, rows
# read by both workers) move weights by >= 1e-4, the step size itself.
ATOL = 1e-5


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("train-cluster")
    with sparkproc.start_standalone_cluster(
        folder, cores=1, memory="1g", timeout=180, workers=2
    ) as c:
        yield c


@pytest.fixture(scope="module")
def prepared_root(tmp_path_factory) -> Path:
    """A tiny prepared run (``tests/dags/tinyml.py`` through ``recsys prepare``, local[1])."""
    sys.path.insert(0, str(REPO / "tests" / "dags"))
    from tinyml import write_tiny_movielens

    base = tmp_path_factory.mktemp("train-data")
    data = write_tiny_movielens(base / "tiny")
    root = base / "var"
    cmd = [sys.executable, "-m", "recsys.cli", "prepare", "--input", str(data), "--root"]
    cmd += [str(root), "--ds", DS, "--run", "p1", "--set", "spark.master=local[1]"]
    env = {**spark_env(None), "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def _submit(cluster, python: Path, py_files: str, app: Path, args: list[str], timeout=400):
    cmd = [SPARK_SUBMIT, "--master", cluster.url, "--executor-memory", "512m"]
    cmd += ["--total-executor-cores", "2", "--conf", "spark.executor.cores=1"]
    cmd += ["--conf", "spark.ui.enabled=false", "--py-files", py_files, str(app), *args]
    return cmd, spark_env(python)


def _train_args(root: Path, run: str, *more: str) -> list[str]:
    return ["--root", str(root), "--ds", DS, "--run", run, "-v", *more]


# --------------------------------------------------------------------------------------------
# (a) two workers train to the weights of one


def _rows(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "user_idx": rng.integers(0, 20, n).astype(np.int32),
        "item_idx": rng.integers(0, 30, n).astype(np.int32),
        "rating": rng.uniform(1, 5, n).astype(np.float32),
        "ts": np.arange(n, dtype=np.int64),
    }


def _write(folder: Path, columns: dict[str, np.ndarray]) -> Path:
    folder.mkdir(parents=True)
    pq.write_table(pa.table(columns), folder / "part-0.parquet")
    return folder


def test_two_workers_train_to_the_weights_of_one(cluster, package_zip, isolated_python, tmp_path):
    """Each worker reads its contiguous half of the rows; the one-worker run reads the same rows
    arranged so that its batch k is the union of the two workers' batches k (the global batch is
    32 in both), so the two runs see the same data step for step."""
    import barrier_probe as probe

    half = probe.GLOBAL_BATCH // 2
    rows = _rows(probe.STEPS * probe.GLOBAL_BATCH)
    n = len(rows["ts"])
    order = np.concatenate(
        [
            np.r_[k * half : (k + 1) * half, n // 2 + k * half : n // 2 + (k + 1) * half]
            for k in range(n // probe.GLOBAL_BATCH)
        ]
    )
    two = _write(tmp_path / "two" / "split=train", rows)
    one = _write(tmp_path / "one" / "split=train", {k: v[order] for k, v in rows.items()})

    out = tmp_path / "two.json"
    cmd, env = _submit(
        cluster, isolated_python, f"{package_zip},{PROBE}", PROBE, ["2", str(two), str(out)]
    )
    result = sparkproc.run(cmd, env, tmp_path, 400)
    report = f"{result.report()}\n{cluster.log_text()}"
    cluster.check_not_starved(result, report)
    assert result.code == 0, report
    got = json.loads(out.read_text())
    assert got["replicas"] == 2, report
    # Both executors ran a worker: the tasks really were spread over the two machines' slots.
    logs = [p.read_text(errors="replace") for p in cluster.executor_logs()]
    ran = ['"index": 0}}', '"index": 1}}']
    assert all(any(r in text for text in logs) for r in ran), report

    ref = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import json, barrier_probe; print(json.dumps(barrier_probe.train({str(one)!r})))",
        ],
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{HERE}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert ref.returncode == 0, ref.stderr[-3000:]
    base = json.loads(ref.stdout.strip().splitlines()[-1])
    assert base["replicas"] == 1
    for case in probe.CASES:
        key = "/".join(case)
        a, b = base["weights"][key], got["weights"][key]
        worst = max(
            float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b, strict=True)
        )
        moved = max(float(np.abs(np.asarray(x)).max()) for x in a)
        print(f"{key}: max |one - two| = {worst:.2e}")
        assert worst <= ATOL, f"{key}: two workers differ from one by {worst:.2e}"
        assert moved > 0, key


# --------------------------------------------------------------------------------------------
# (c) more workers than slots


def test_more_workers_than_slots_fail_at_once(
    cluster, package_zip, isolated_python, prepared_root, tmp_path
):
    args = _train_args(prepared_root, "too-many", "--set", "train.workers=3")
    cmd, env = _submit(cluster, isolated_python, str(package_zip), JOB, args)
    result = sparkproc.run(cmd, env, tmp_path, 200)
    report = result.report()
    assert result.code == 2, report
    text = result.out + result.err
    lines = [line for line in text.splitlines() if line.startswith("recsys train: error:")]
    assert len(lines) == 1, report
    assert "train.workers=3 needs 3 task slots" in lines[0] and "the job has 2" in lines[0], report
    assert "Traceback" not in text, report
    assert result.seconds < 60, f"took {result.seconds:.0f}s\n{report}"
    assert not (prepared_root / "models" / f"ds={DS}" / "run=too-many").exists()


# --------------------------------------------------------------------------------------------
# (b) a worker killed mid-training


def _worker_pids() -> dict[int, int]:
    """{TF_CONFIG task index: pid} of the running recsys.train.launch.worker processes."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if b"recsys.train.launch.worker" not in cmdline:
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"TF_CONFIG="):
                found[json.loads(item[10:])["task"]["index"]] = int(entry.name)
    return found


def test_killed_worker_fails_the_stage_and_the_retry_commits_a_whole_run(
    cluster, package_zip, isolated_python, prepared_root, tmp_path
):
    """The chief's TensorFlow process is killed after a few epochs: its task fails, Spark stops
    the other task (whose worker dies with it) and re-runs the stage; until the retry commits,
    ``resolve`` does not name the half-written run (its staging folder is dropped by the retry)."""
    run = "killed"
    sets = [
        "train.workers=2",
        "train.epochs=20",
        "train.patience=1000",
        "train.batch_per_replica=16",
    ]
    args = _train_args(prepared_root, run, *[a for s in sets for a in ("--set", s)])
    cmd, env = _submit(cluster, isolated_python, str(package_zip), JOB, args)
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        killed = None
        deadline = time.monotonic() + 300
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            logs = "".join(p.read_text(errors="replace") for p in cluster.executor_logs())
            pids = _worker_pids()
            if "epoch 3/20" in logs and 0 in pids:
                os.kill(pids[0], signal.SIGKILL)
                killed = pids[0]
            time.sleep(0.5)
        assert killed is not None, "the chief never reached epoch 3"
        with pytest.raises(RecsysError):
            storage.resolve(str(prepared_root), "models", DS, run)
        out, _ = proc.communicate(timeout=600)
    finally:
        sparkproc.kill_group(proc)
    assert proc.returncode == 0, out[-6000:]
    final = storage.resolve(str(prepared_root), "models", DS, run)
    manifest = ModelManifest.read(final)
    assert manifest.training.replicas == 2
    # The retry resumed from the chief's backup (the peer from a copy of it), rather than from
    # scratch, and the record counts every epoch, those before the kill included. The kill
    # follows epoch 3's progress line, which the backup of that epoch follows: 2 or later.
    assert manifest.training.epochs_run == 20
    assert 2 <= manifest.training.resumed_from_epoch < 20
    assert (final / "arrays.npz").is_file() and (final / "model.keras").is_file()
    assert storage.latest(str(prepared_root), "models") == final
    assert killed not in _worker_pids().values()
    # The stage ran twice: the first attempt's failure names the worker and its status.
    logs = "".join(p.read_text(errors="replace") for p in cluster.executor_logs())
    assert "training worker 0 of 2" in logs and "status -9" in logs, out[-6000:]
    # The tasks' folders (a peer's scratch space inside) are gone, the killed attempt's too.
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    assert not [*tmp.glob("recsys-peer-*"), *tmp.glob("recsys-train-task-*")]


# --------------------------------------------------------------------------------------------
# (d) the night's train and refit as the DAG submits them


def test_train_then_refit_on_the_cluster_from_the_zip(
    cluster, package_zip, isolated_python, prepared_root, tmp_path
):
    train = _train_args(
        prepared_root, "night", "--set", "train.workers=2", "--set", "train.epochs=3"
    )
    cmd, env = _submit(cluster, isolated_python, str(package_zip), JOB, train)
    result = sparkproc.run(cmd, env, tmp_path, 400)
    report = f"{result.report()}\n{cluster.log_text()}"
    assert result.code == 0, report
    model = storage.resolve(str(prepared_root), "models", DS, "night")
    assert ModelManifest.read(model).training.replicas == 2

    refit = _train_args(prepared_root, "night-refit", "--set", "train.workers=2", "--refit")
    refit += ["--refit-ds", DS, "--refit-run", "night"]
    cmd, env = _submit(cluster, isolated_python, str(package_zip), JOB, refit)
    result = sparkproc.run(cmd, env, tmp_path, 400)
    assert result.code == 0, f"{result.report()}\n{cluster.log_text()}"
    manifest = ModelManifest.read(storage.resolve(str(prepared_root), "models", DS, "night-refit"))
    assert manifest.refit_of is not None and manifest.refit_of.run == "night"
    assert manifest.training.replicas == 2
    assert manifest.training.continued_on == ["val", "test"]
    # Every TensorFlow worker imported recsys from the shipped zip, never from the checkout.
    logs = "".join(p.read_text(errors="replace") for p in cluster.executor_logs())
    origins = [
        line.rsplit(" from ", 1)[1] for line in logs.splitlines() if ": recsys from " in line
    ]
    assert origins and all(o.endswith("recsys.zip/recsys/__init__.py") for o in origins), origins
