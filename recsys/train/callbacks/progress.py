"""Training progress: the epoch timer, one log line per epoch, and a step bar when a person
watches a terminal.

Keras ``fit`` runs with ``verbose=0`` (its own bar would fill the Airflow task log with control
characters), so ``EpochProgress`` says how training goes through this module's logger at INFO::

    epoch 3/20: loss 5.0123, val_ndcg@10 0.1874, 61,250 rows/s, elapsed 41s,
    ETA at most 3m57s (early stopping may end sooner)

When stderr is a terminal it also draws a transient rich bar of the epoch's steps, cleared before
the epoch's line is logged. Keras reports a step only once per ``steps_per_execution`` steps (up
to 64), so the bar moves in such jumps. A run resumed from its backup starts at the epoch Keras
resumes from, numbers epochs as Keras does, and counts elapsed time from the run's first start.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import keras

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """``4.2s``, ``41s``, ``3m57s``, ``2h05m``: short enough for a log line."""
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


class TrainTimer(keras.callbacks.Callback):
    """Times the training part of each epoch (validation excluded)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._start: float | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()

    def _stop(self) -> None:
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def throughput(self, rows_per_epoch: int) -> float:
        """Rows per second over the epochs after the first (which pays for XLA compilation)."""
        timed = self.seconds[1:] or self.seconds
        return rows_per_epoch * len(timed) / max(sum(timed), 1e-9)


class EpochProgress(keras.callbacks.Callback):
    """Logs each epoch's loss, validation metric, rows/s, elapsed time and ETA.

    Place it after the callbacks it reads: the ``TrainTimer`` (the epoch's training seconds),
    the validator that adds its metric to the epoch logs, and early stopping (whether this epoch
    ends the run).

    Args:
        timer: the fit's ``TrainTimer``; its last entry is this epoch's training part, validation
            excluded, which rows/s divides by.
        rows_per_epoch: training rows one epoch reads (steps x global batch).
        val_metric: epoch-log key of the validation metric to show (``val_ndcg@10``,
            ``val_rmse``); None when there is no validation.
        early_stopping: whether early stopping may end the run before its last epoch, which makes
            the ETA an upper bound.
        bar: draw the step bar; by default only when stderr is a terminal, so never in a task log.
        clock: monotonic seconds (tests pass a fake one).
    """

    async_safe = True  # the batch hook reads only the step index, never the logs

    def __init__(
        self,
        timer: Any,
        rows_per_epoch: int,
        val_metric: str | None = None,
        early_stopping: bool = False,
        bar: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.timer = timer
        self.rows_per_epoch = rows_per_epoch
        self.val_metric = val_metric
        self.early_stopping = early_stopping
        self.draw_bar = sys.stderr.isatty() if bar is None else bar
        self.clock = clock
        self._bar: Any = None
        self._task: Any = None
        self._started = self._epoch_start = 0.0
        self._epoch_seconds: list[float] = []
        # Wall seconds from the start of training to the end of each epoch (validation included).
        self.elapsed: list[float] = []

    def on_train_begin(self, logs=None):
        self._started = self.clock()
        self._epoch_seconds = []
        self.elapsed = []

    def resume(self, elapsed: list[float]) -> None:
        """Continue the clock of a run resumed from its backup: ``elapsed`` are the wall times
        of the epochs before the restart (call after ``on_train_begin``)."""
        self.elapsed = list(elapsed)
        self._epoch_seconds = [b - a for a, b in zip([0.0, *elapsed], elapsed, strict=False)]
        if elapsed:
            self._started = self.clock() - elapsed[-1]

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self.clock()
        if self.draw_bar:
            self._start_bar(f"epoch {epoch + 1}/{self.params['epochs']}")

    def on_train_batch_end(self, batch, logs=None):
        if self._bar is not None:
            # ``batch`` is the last step of the call; Keras counts whole calls of
            # steps_per_execution steps even past the epoch's last step, so it is capped.
            steps = self.params.get("steps") or batch + 1
            self._bar.update(self._task, completed=min(batch + 1, steps))

    def on_epoch_end(self, epoch, logs=None):
        self._stop_bar()
        now = self.clock()
        self._epoch_seconds.append(now - self._epoch_start)
        self.elapsed.append(now - self._started)
        log.info("%s", self.line(epoch, logs or {}, now))

    def on_train_end(self, logs=None):
        self._stop_bar()

    def line(self, epoch: int, logs: dict[str, float], now: float) -> str:
        """The log line of ``epoch`` (0-based, as Keras counts) from its epoch logs."""
        epochs = self.params["epochs"]
        parts = [f"epoch {epoch + 1}/{epochs}: loss {logs.get('loss', float('nan')):.4f}"]
        if self.val_metric and self.val_metric in logs:
            parts.append(f"{self.val_metric} {logs[self.val_metric]:.4f}")
        train_seconds = self.timer.seconds[-1] if self.timer.seconds else now - self._epoch_start
        parts.append(f"{self.rows_per_epoch / max(train_seconds, 1e-9):,.0f} rows/s")
        parts.append(f"elapsed {duration(now - self._started)}")
        remaining = epochs - (epoch + 1)
        if getattr(self.model, "stop_training", False):
            parts.append("early stopping ends the run here")
        elif remaining > 0:
            # The first epoch pays for XLA compilation: left out of the mean once others exist.
            timed = self._epoch_seconds[1:] or self._epoch_seconds
            eta = duration(remaining * sum(timed) / len(timed))
            if self.early_stopping:
                parts.append(f"ETA at most {eta} (early stopping may end sooner)")
            else:
                parts.append(f"ETA {eta}")
        return ", ".join(parts)

    def _start_bar(self, description: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._bar = Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "steps",
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
            transient=True,
        )
        self._task = self._bar.add_task(description, total=self.params.get("steps"))
        self._bar.start()

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
