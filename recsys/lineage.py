"""Which runs stand behind the published table, and how two prepared runs' indices meet.

The gate compares tonight's model with the published one, and the nightly training starts from
it; both ask here, below the two of them, so that training does not import the gate. Prepare
renumbers users and items every night: rows of two runs meet through their original ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from recsys import storage
from recsys.errors import RecsysError
from recsys.manifests import ModelManifest, RecommendationsManifest


def original_ids(prepared: Path, table: str, idx: str, id_col: str) -> np.ndarray:
    """Original ids of a prepared run's users or items ordered by index: ``ids[idx]``."""
    frame = pq.read_table(prepared / table, columns=[idx, id_col]).to_pandas()
    ids = np.empty(len(frame), dtype=object)
    ids[frame[idx].to_numpy()] = frame[id_col].to_numpy()
    return ids


def published_model(root: str) -> tuple[Path, ModelManifest] | None:
    """The model behind the published table (None: nothing published); a refit's evaluated
    twin instead. The model to beat, and the one tonight's training warm-starts from."""
    try:
        table = storage.latest(root, "recommendations")
    except RecsysError:
        return None
    model_dir = RecommendationsManifest.read(table).model.folder
    model = ModelManifest.read(model_dir)
    if model.refit_of:
        model_dir = model.refit_of.folder
        model = ModelManifest.read(model_dir)
    return model_dir, model
