"""A killed training run, re-run, records itself as the uninterrupted run does."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from recsys import storage
from recsys.config import load_config

pytest.importorskip("tensorflow")

DS = "2026-01-08"
# Ranking with early stopping on the validation NDCG: best_epoch is the monitored best, not the
# last epoch, so a resumed run that forgot its first epochs would misreport it.
TRAIN = {"epochs": 6, "patience": 2, "eval_max_users": 0, "dim": 8, "seed": 7}


class Killed(Exception):
    """Stands for the SIGKILL of a real interruption."""


@pytest.fixture(scope="module")
def prepared_root(spark, tmp_path_factory, synthetic_run):
    return synthetic_run(tmp_path_factory.mktemp("resume"), (80, 100, 4000), 2, "2026-01-02")


def test_a_killed_run_records_every_epoch_and_its_true_best_epoch(
    prepared_root, monkeypatch, caplog
):
    from recsys.train.callbacks import resume
    from recsys.train.step import run_train

    cfg = load_config(root=prepared_root, train=TRAIN)
    whole = run_train(cfg, DS, "whole")

    # The same run killed right after its backup of epoch 3 (as a SIGKILL then would leave it).
    original = resume.RecordedBackup.on_epoch_end
    armed = {"kill_after": 2}

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == armed["kill_after"]:
            raise Killed()

    monkeypatch.setattr(resume.RecordedBackup, "on_epoch_end", on_epoch_end)
    with pytest.raises(Killed):
        run_train(cfg, DS, "killed")
    backups = storage.local_root(prepared_root) / "models" / "_checkpoints" / f"ds={DS}"
    assert [p.name for p in backups.rglob(resume.RECORD)] == [resume.RECORD]
    armed["kill_after"] = -1

    with caplog.at_level(logging.INFO, logger="recsys.train.callbacks.resume"):
        again = run_train(cfg, DS, "killed")
    assert "resumed from epoch 3" in [r.getMessage().split(" (")[0] for r in caplog.records]

    a, b = whole.manifest.training, again.manifest.training
    assert (b.resumed_from_epoch, a.resumed_from_epoch) == (3, 0)
    assert b.epochs_run == a.epochs_run == len(b.epoch_seconds)
    assert b.best_epoch == a.best_epoch
    assert 1 <= a.best_epoch < a.epochs_run  # early stopping chose an earlier epoch
    assert len(b.elapsed_seconds) == b.epochs_run
    assert b.elapsed_seconds == sorted(b.elapsed_seconds)  # one clock over the restart
    history = [json.loads((r.path / "history.json").read_text()) for r in (whole, again)]
    assert history[0].keys() == history[1].keys()
    for key in history[0]:  # the resumed run saw the batches the uninterrupted one saw
        assert np.allclose(history[0][key], history[1][key], rtol=1e-4, atol=1e-5), key
    # The weights kept are the best epoch's: the same model as the uninterrupted run's.
    arrays = [np.load(r.path / "arrays.npz") for r in (whole, again)]
    assert np.allclose(arrays[0]["user_factors"], arrays[1]["user_factors"], atol=1e-5)
    assert whole.manifest.metrics.test["ndcg@10"] == pytest.approx(
        again.manifest.metrics.test["ndcg@10"], abs=1e-6
    )
    assert not backups.exists() or not any(backups.rglob("*.h5"))  # the backup went with the run


@pytest.mark.slow
def test_a_sigkilled_training_process_resumes_with_the_same_record(prepared_root, tmp_path):
    """A real ``recsys train`` process killed with SIGKILL while it trains epoch 4 or later."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from recsys.train.callbacks.resume import backed_up_epochs
    from recsys.train.step import run_train

    ds = "2026-01-09"
    cfg = load_config(root=prepared_root, train=TRAIN)
    whole = run_train(cfg, ds, "whole")
    argv = [sys.executable, "-m", "recsys.cli", "train", "--root", prepared_root, "--ds", ds]
    argv += [arg for k, v in TRAIN.items() for arg in ("--set", f"train.{k}={v}")]
    backups = storage.local_root(prepared_root) / "models" / "_checkpoints" / f"ds={ds}"
    with open(tmp_path / "killed.log", "w") as out:
        proc = subprocess.Popen([*argv, "--run", "killed"], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if backed_up_epochs(next(backups.glob("*"), backups)) >= 3:
                break  # its backup holds 3 epochs: it dies somewhere in the 4th or later
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    done = backed_up_epochs(next(backups.glob("*")))
    assert done >= 3

    again = run_train(cfg, ds, "killed")
    a, b = whole.manifest.training, again.manifest.training
    assert b.resumed_from_epoch == done
    assert (b.epochs_run, b.best_epoch) == (a.epochs_run, a.best_epoch)
    history = [json.loads((r.path / "history.json").read_text()) for r in (whole, again)]
    for key in history[0]:
        assert np.allclose(history[0][key], history[1][key], rtol=1e-4, atol=1e-5), key
