"""Training progress: one log line per epoch with its figures, a step bar only on a terminal."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("tensorflow")

from recsys.config import load_config  # noqa: E402
from recsys.train.callbacks.progress import EpochProgress, duration  # noqa: E402

LOGGER = "recsys.train.callbacks.progress"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_epoch(cb, clock, epoch, train_seconds, wall_seconds, logs):
    """One epoch as Keras drives it: begin, the timer's training part, end."""
    cb.on_epoch_begin(epoch)
    cb.timer.seconds.append(train_seconds)
    clock.now += wall_seconds
    cb.on_epoch_end(epoch, logs)


def test_duration():
    assert [duration(s) for s in (4.24, 41.4, 237, 7500)] == ["4.2s", "41s", "3m57s", "2h05m"]


def test_epoch_lines_by_hand(caplog):
    clock = Clock()
    cb = EpochProgress(
        SimpleNamespace(seconds=[]), 1000, "val_rmse", early_stopping=True, bar=False, clock=clock
    )
    cb.set_params({"epochs": 4, "steps": 10})
    caplog.set_level(logging.INFO, logger=LOGGER)
    cb.on_train_begin()
    run_epoch(cb, clock, 0, 4.0, 5.0, {"loss": 0.5, "val_loss": 1.0, "val_rmse": 0.9})
    # Epoch 1 (the compiling one) is left out of the mean once another exists: 2 x 3 s.
    run_epoch(cb, clock, 1, 2.0, 3.0, {"loss": 0.25, "val_rmse": 0.875})
    cb.set_model(SimpleNamespace(stop_training=True))  # early stopping fired on this epoch
    run_epoch(cb, clock, 2, 2.5, 3.0, {"loss": 0.125, "val_rmse": 0.8})
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "epoch 1/4: loss 0.5000, val_rmse 0.9000, 250 rows/s, elapsed 5.0s, "
        "ETA at most 15s (early stopping may end sooner)",
        "epoch 2/4: loss 0.2500, val_rmse 0.8750, 500 rows/s, elapsed 8.0s, "
        "ETA at most 6.0s (early stopping may end sooner)",
        "epoch 3/4: loss 0.1250, val_rmse 0.8000, 400 rows/s, elapsed 11s, "
        "early stopping ends the run here",
    ]


def test_resumed_run_counts_from_its_epoch_without_early_stopping(caplog):
    clock = Clock()
    cb = EpochProgress(SimpleNamespace(seconds=[]), 300, bar=False, clock=clock)
    cb.set_params({"epochs": 5, "steps": 3})
    caplog.set_level(logging.INFO, logger=LOGGER)
    cb.on_train_begin()
    run_epoch(cb, clock, 3, 1.0, 2.0, {"loss": 1.0, "val_ndcg@10": 0.3})
    run_epoch(cb, clock, 4, 1.0, 2.0, {"loss": 1.0})
    assert [r.getMessage() for r in caplog.records if r.name == LOGGER] == [
        "epoch 4/5: loss 1.0000, 300 rows/s, elapsed 2.0s, ETA 2.0s",
        "epoch 5/5: loss 1.0000, 300 rows/s, elapsed 4.0s",
    ]


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_follows_the_steps_keras_reports_on_a_terminal(monkeypatch):
    """With 64 steps per execution Keras reports only every 64th step of the 100, and the last
    call as ending at step 128 (whole calls): the bar shows 64, then 100 of 100."""
    monkeypatch.setattr(sys, "stderr", TTY())
    cb = EpochProgress(SimpleNamespace(seconds=[]), 100)
    cb.set_params({"epochs": 2, "steps": 100})
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    seen = []
    for step in (63, 127):
        cb.on_train_batch_end(step)
        seen.append(cb._bar.tasks[0].completed)
    cb._bar.refresh()
    cb.timer.seconds.append(1.0)
    cb.on_epoch_end(0, {"loss": 1.0})
    assert seen == [64, 100]
    assert cb._bar is None  # stopped before the epoch's line is logged
    drawn = sys.stderr.getvalue()
    assert "epoch 1/2" in drawn and "100/100" in drawn


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not EpochProgress(SimpleNamespace(seconds=[]), 100).draw_bar


@pytest.fixture(scope="module")
def tiny_root(spark, tmp_path_factory, synthetic_run):
    """A prepared run of a few hundred ratings (module-scoped: Spark is slow)."""
    return synthetic_run(tmp_path_factory.mktemp("progress"), (20, 60, 600), 3, "2026-01-02")


def tiny_cfg(root, **train):
    return load_config(root=root, train={"epochs": 3, "eval_max_users": 0, **train})


LINE = re.compile(
    r"^epoch (\d+)/3: loss (\S+), val_ndcg@10 (\S+), [\d,]+ rows/s, elapsed [\d.hms]+"
    r"(, ETA at most [\d.hms]+ \(early stopping may end sooner\))?$"
)


def test_training_logs_one_line_per_epoch_and_draws_no_bar(tiny_root, caplog, monkeypatch):
    """Not a terminal (pytest captures stderr): the lines are logged, no bar is ever started."""
    from rich.progress import Progress

    from recsys.train.step import run_train

    started = []
    monkeypatch.setattr(Progress, "start", lambda self: started.append(self))
    caplog.set_level(logging.INFO, logger=LOGGER)
    result = run_train(tiny_cfg(tiny_root, objective="ranking", patience=10), "2026-01-03")
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    assert [m.group(1) for m in matches] == ["1", "2", "3"]
    assert [bool(m.group(4)) for m in matches] == [True, True, False]  # no ETA at the end
    history = json.loads((result.path / "history.json").read_text())
    assert [m.group(2) for m in matches] == [f"{v:.4f}" for v in history["loss"]]
    assert [m.group(3) for m in matches] == [f"{v:.4f}" for v in history["val_ndcg@10"]]
    assert started == []


def test_resumed_training_numbers_epochs_as_keras_does(tiny_root, caplog, monkeypatch):
    """Killed after epoch 1, the rerun resumes from its backup and logs epochs 2 and 3."""
    from recsys.train import step
    from recsys.train.callbacks import resume

    class Killed(Exception):
        pass

    backup = resume.RecordedBackup.on_epoch_end
    runs = []

    def on_epoch_end(self, epoch, logs=None):
        backup(self, epoch, logs)  # the epoch is backed up, then the process dies
        if self not in runs:
            runs.append(self)
        if len(runs) == 1:
            raise Killed()

    monkeypatch.setattr(resume.RecordedBackup, "on_epoch_end", on_epoch_end)
    caplog.set_level(logging.INFO, logger=LOGGER)
    cfg = tiny_cfg(tiny_root, objective="ranking", patience=10)
    with pytest.raises(Killed):
        step.run_train(cfg, "2026-01-04")
    caplog.clear()
    step.run_train(cfg, "2026-01-04")
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert [line.split(":")[0] for line in lines] == ["epoch 2/3", "epoch 3/3"]


def test_recsys_train_shows_devices_and_epoch_lines_by_default(tiny_root):
    """`recsys train` without -v, stderr a pipe as in an Airflow task: lines, and no bar."""
    import tensorflow as tf

    from recsys.train.launch.strategy import device_kind

    cmd = [sys.executable, "-m", "recsys.cli", "train", "--root", tiny_root, "--ds", "2026-01-05"]
    cmd += ["--objective", "rating", "--set", "train.epochs=2", "--set", "train.eval_max_users=0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert f"TensorFlow {tf.__version__} on {device_kind()}: default strategy over" in err
    line = r"recsys\.train\.callbacks\.progress: (epoch \d/2): loss \S+, val_rmse \S+,"
    epochs = re.findall(line, err)
    assert epochs == ["epoch 1/2", "epoch 2/2"]
    assert "\x1b[" not in err and "━" not in err
