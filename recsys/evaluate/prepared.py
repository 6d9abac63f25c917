"""Evaluate an exported model on a prepared run: rating and ranking metrics next to baselines.

Numpy/pandas only: the scorer is the numpy kernel of the model's exported arrays, so evaluation
(and the nightly gate) never needs TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.evaluate.protocol import evaluate_baselines, evaluate_scorer
from recsys.manifests import ModelManifest, PreparedManifest
from recsys.splits import COLUMNS, load_split


def sample_users(frame: pd.DataFrame, max_users: int, seed: int) -> pd.DataFrame:
    """Rows of at most ``max_users`` users drawn with a fixed seed (0 = all users)."""
    users = frame[S.USER_IDX].unique()
    if not max_users or len(users) <= max_users:
        return frame
    chosen = np.random.default_rng(seed).choice(users, size=max_users, replace=False)
    return frame[frame[S.USER_IDX].isin(chosen)]


def evaluate_prepared(
    scorer: Any, prepared: Path, k: int = 10, max_users: int = 0, seed: int = 0
) -> dict[str, Any]:
    """``{"test": {...}, "val": {...}, "baselines": {...}}`` for the model behind ``scorer``.

    Ranking candidates are all items a user did not rate in train; ranking uses the scorer's
    raw logit (``rank_scores``), rating metrics its predictions (skipped for ranking models and
    implicit data).
    """
    manifest = PreparedManifest.read(prepared)
    n_users, n_items = manifest.n_users, manifest.n_items
    train = load_split(prepared, "train")
    # Rating metrics only for rating models on rated data: a ranking model's score is a logit.
    rating_model = getattr(scorer, "objective", "rating") == "rating"
    predict = scorer.predict if rating_model and not manifest.implicit else None
    out: dict[str, Any] = {}
    for split in ("test", "val"):
        if manifest.count(split) == 0:
            continue
        held_out = sample_users(load_split(prepared, split), max_users, seed)
        out[split] = evaluate_scorer(
            scorer.rank_scores,
            train,
            held_out,
            n_users,
            n_items,
            k=k,
            predict_fn=predict,
            factors_fn=getattr(scorer, "order_factors", None),
        )
    if "test" in out:
        test = sample_users(load_split(prepared, "test"), max_users, seed)
        # EASE's lambda is chosen on the validation users (sampled like the test users).
        val = None
        if manifest.count("val"):
            val = sample_users(load_split(prepared, "val"), max_users, seed)
        # Recency-weighted EASE needs each train row's time; a log without times goes without it.
        if manifest.has_timestamps:
            train = load_split(prepared, "train", columns=(*COLUMNS, S.TS))
        out["baselines"] = evaluate_baselines(train, test, n_users, n_items, k=k, val_df=val)
    return out


def check_inputs(model_dir: Path, model: ModelManifest) -> None:
    """Refuse a model run whose arrays, or whose prepared run, differ from their manifests."""
    from recsys.integrity import check_model, check_prepared

    check_model(model_dir, model, ("arrays.npz",))
    check_prepared(model.prepared.folder, PreparedManifest.read(model.prepared.folder))


def evaluate_model(
    root: str, ds: str | None = None, run: str | None = None, k: int = 10, max_users: int = 0
) -> tuple[ModelManifest, dict[str, Any]]:
    """A model run (the given one, else ``models/_LATEST``) evaluated on its prepared run."""
    from recsys import storage
    from recsys.artifact import Scorer

    folder = storage.resolve(root, "models", ds, run)
    model = ModelManifest.read(folder)
    check_inputs(folder, model)
    scorer = Scorer.load(folder / "arrays.npz")
    return model, evaluate_prepared(scorer, model.prepared.folder, k=k, max_users=max_users)
