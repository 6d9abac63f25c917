"""A killed training run resumes from its backup and records itself as one run.

Keras' ``BackupAndRestore`` brings back the weights, the optimiser and the epoch, but not what the
run knew of itself: the epochs before the kill vanish from the history, early stopping forgets its
best epoch and weights, and the manifest would count from the restart (so a full refit would train
for the wrong number of epochs). ``RecordedBackup`` keeps that too, in the same folder:

* ``recsys_record.json``: every finished epoch's logs, training seconds and elapsed time, and
  early stopping's state after it; written (atomically) *before* Keras' own backup of the epoch,
  so it never has fewer epochs than the backup, and cut to the backup's epoch on resume;
* ``recsys_best-<epoch>.npz``: the weights early stopping would restore, kept until a newer backup
  no longer needs them;
* Keras' own backup, written to temporary names and renamed, so a kill while it is written leaves
  the previous one whole.

On resume it logs ``resumed from epoch N``, puts the earlier epochs back into the timer, the
progress line and early stopping, and :meth:`history` returns the whole run. Keras deletes the
folder when training ends.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import keras
import numpy as np

from recsys.errors import ensure_space, writing

log = logging.getLogger(__name__)

RECORD = "recsys_record.json"
BEST = "recsys_best-{epoch}.npz"


def backed_up_epochs(backup_dir: Path) -> int:
    """Epochs a backup holds (0: none): where a re-run resumes, known before ``fit`` starts, so
    the input pipeline can skip the batches those epochs read."""
    try:
        return int(json.loads((backup_dir / "training_metadata.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with writing(path):  # a full disk: one sentence naming the file
        write(tmp)
        os.replace(tmp, path)


def model_bytes(model) -> int:
    """What one save of ``model`` may need on disk: its weights and two optimizer slots each
    (float32), plus a margin for the file's own structure."""
    return 3 * 4 * int(model.count_params()) + (1 << 20)


def _savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a file object: np.savez would append .npz to a name
        np.savez(handle, **arrays)


class RecordedBackup(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that also backs up the run's record (see the module docstring).

    Place it after the callbacks whose state it keeps (timer, validation, early stopping,
    progress): their ``on_train_begin`` resets them before it restores, and their
    ``on_epoch_end`` has run when it records the epoch.

    Args:
        backup_dir: the run's backup folder (one per ds, prepared run and settings).
        timer: the ``TrainTimer`` (training seconds per epoch).
        progress: the ``EpochProgress`` (elapsed wall time per epoch), or None.
        early_stopping: the ``EarlyStopping`` callback, or None.
    """

    def __init__(self, backup_dir: Path, timer: Any, progress: Any = None, early_stopping=None):
        super().__init__(str(backup_dir))
        self.dir = Path(backup_dir)
        self.timer, self.progress, self.early_stopping = timer, progress, early_stopping
        self.resumed_from = 0  # epochs done before this process (0: a fresh run)
        self.record: dict[str, Any] = {}

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # weights, optimiser and model._initial_epoch
        self.resumed_from = int(getattr(self.model, "_initial_epoch", 0) or 0)
        self.record = {"history": {}, "seconds": [], "elapsed": [], "stopping": []}
        if not self.resumed_from:
            return
        try:
            saved = json.loads((self.dir / RECORD).read_text())
        except (OSError, ValueError):
            saved = None
        n = self.resumed_from
        if not saved or len(saved.get("seconds", [])) < n:
            log.warning(
                "resumed from epoch %d without the record of the earlier epochs (%s); the "
                "manifest counts from the restart",
                n,
                self.dir,
            )
            return
        self.record = {
            "history": {k: v[:n] for k, v in saved["history"].items()},
            "seconds": saved["seconds"][:n],
            "elapsed": saved["elapsed"][:n],
            "stopping": saved["stopping"][:n],
        }
        self._restore(n)
        log.info("resumed from epoch %d (backup %s)", n, self.dir)

    def _restore(self, n: int) -> None:
        """Put the first ``n`` epochs back into the timer, progress line and early stopping."""
        self.timer.seconds[:0] = self.record["seconds"]
        if self.progress is not None:
            self.progress.resume(self.record["elapsed"])
        state = self.record["stopping"][-1] if self.record["stopping"] else None
        es = self.early_stopping
        if es is None or state is None:
            return
        es.wait, es.best, es.best_epoch = state["wait"], state["best"], state["best_epoch"]
        best = self.dir / BEST.format(epoch=state["best_epoch"])
        if es.restore_best_weights and best.is_file():
            with np.load(best) as data:
                es.best_weights = [data[f"w{i}"] for i in range(len(data.files))]

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        for key, value in logs.items():
            self.record["history"].setdefault(key, []).append(float(value))
        self.record["seconds"].append(self.timer.seconds[-1] if self.timer.seconds else 0.0)
        elapsed = self.progress.elapsed[-1] if self.progress and self.progress.elapsed else 0.0
        self.record["elapsed"].append(elapsed)
        es = self.early_stopping
        state = None
        if es is not None and es.best is not None:
            state = {"wait": es.wait, "best": float(es.best), "best_epoch": es.best_epoch}
            if es.best_epoch == epoch and es.best_weights is not None:
                weights = {f"w{i}": w for i, w in enumerate(es.best_weights)}
                path = self.dir / BEST.format(epoch=epoch)
                self.dir.mkdir(parents=True, exist_ok=True)
                _write_atomic(path, lambda tmp: _savez(tmp, weights))
        self.record["stopping"].append(state)
        self.dir.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.record)
        _write_atomic(self.dir / RECORD, lambda tmp: tmp.write_text(text))
        super().on_epoch_end(epoch, logs)  # Keras' backup of this epoch, after the record
        keep = None if state is None else BEST.format(epoch=state["best_epoch"])
        for stale in self.dir.glob(BEST.format(epoch="*")):
            if stale.name != keep:
                stale.unlink(missing_ok=True)

    def _save_model(self):
        """Keras' backup, written to temporary names and renamed into place: a kill while it
        writes leaves the previous backup whole (Keras writes ``latest.weights.h5`` in place)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        weights = self.dir / ".next.weights.h5"  # Keras wants the .weights.h5 suffix
        # h5py crashes the process on a full disk: refuse before it writes.
        ensure_space(self._weights_path, model_bytes(self.model))
        with writing(self._weights_path):
            self.model.save_weights(str(weights), overwrite=True)
            meta = self.dir / ".next.metadata.json"
            state = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            meta.write_text(json.dumps(state))
            os.replace(weights, self._weights_path)  # the two renames: microseconds apart
            os.replace(meta, self._training_metadata_path)

    def history(self) -> dict[str, list[float]]:
        """Every epoch's logs, those before a kill included."""
        return {k: list(v) for k, v in self.record["history"].items()}

    @property
    def seconds(self) -> list[float]:
        return list(self.record["seconds"])

    @property
    def elapsed(self) -> list[float]:
        return list(self.record["elapsed"])
