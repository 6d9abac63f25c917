"""The model of a training run, sized and configured from the prepared run's manifest.

The family's Keras class is found through the registry (``recsys.families``): each family's
module is imported only when a run trains (or a saved model is loaded) with it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from recsys import schema as S
from recsys.config import TrainConfig
from recsys.families import FAMILIES, family
from recsys.manifests import PreparedManifest


def model_class(name: str) -> type:
    """The Keras class of the family ``name`` (its module imported, so registered for loading)."""
    module, cls = family(name).model.split(":")
    return getattr(importlib.import_module(module), cls)


def register_all() -> None:
    """Import every family's class: Keras finds saved models' classes by registered name."""
    for name in FAMILIES:
        model_class(name)


def genre_matrix(items_dir: Path, n_items: int) -> np.ndarray | None:
    """Multi-hot genres per item_idx, each row normalised to sum 1: (n_items, n_genres)."""
    import pyarrow.parquet as pq

    items = pq.read_table(items_dir, columns=[S.ITEM_IDX, S.GENRES]).to_pandas()
    vocab = sorted({g for gs in items[S.GENRES] for g in gs})
    if not vocab:
        return None
    col = {g: k for k, g in enumerate(vocab)}
    out = np.zeros((n_items, len(vocab)), np.float32)
    for idx, gs in zip(items[S.ITEM_IDX], items[S.GENRES], strict=True):
        for g in gs:
            out[idx, col[g]] = 1.0
    sums = out.sum(axis=1, keepdims=True)
    return np.divide(out, sums, out=np.zeros_like(out), where=sums > 0)


def ranking_settings(tcfg: TrainConfig, manifest: PreparedManifest, batch: int) -> dict[str, Any]:
    """The ranking loss of ``tcfg`` for this data (``recsys.train.ranking.RankingLoss`` fields).

    A catalogue no larger than the sampled candidates (``negatives + in_batch_negatives``) is
    scored whole: the full softmax is exact and costs no more (a sequential family always takes
    the full softmax, ``recsys.train.models.seq``). User runs (``train.user_group``)
    serve the sampled softmax of the factor models, the only loss they speed up, as long as the
    batch holds at least ``in_batch_negatives`` runs (small batches keep rows in any order).
    """
    negatives, in_batch = tcfg.negatives, min(tcfg.in_batch_negatives, batch)
    if negatives + in_batch >= manifest.n_items or family(tcfg.model).sequence:
        negatives, in_batch = 0, 0
    factored = family(tcfg.model).kernel == "factor" and tcfg.loss == "softmax"
    group = 1
    if factored and negatives + in_batch:
        # Never fewer runs than in-batch negatives (one chosen item per run), and whole runs in
        # a batch: the largest such run up to train.user_group.
        group = max(1, min(tcfg.user_group, batch // max(in_batch, 1)))
        while batch % group:
            group -= 1
    return {
        "loss": tcfg.loss,
        "negatives": int(negatives),
        "in_batch": int(min(in_batch, batch // group)),
        "min_rating": float(tcfg.min_rating),
        "rating_weights": bool(tcfg.rating_weights),
        "mean_rating": float(manifest.global_mean) or 1.0,
        "seed": int(tcfg.seed),
        "group": int(group),
    }


def build_model(
    tcfg: TrainConfig,
    manifest: PreparedManifest,
    features: np.ndarray | None,
    ranking: dict[str, Any] | None = None,
):
    """The Keras model of ``tcfg.model`` sized from the prepared manifest."""
    lo, hi = manifest.rating_scale
    kwargs: dict[str, Any] = {
        "dim": tcfg.dim,
        "l2": tcfg.l2,
        "rating_min": lo,
        "rating_max": hi,
        "global_mean": manifest.global_mean,
        "item_features": features,
        "init_scale": tcfg.init_scale,
        "seed": tcfg.seed,
        "objective": tcfg.objective,
        "ranking": ranking,
    }
    cls = model_class(tcfg.model)
    model = cls(manifest.n_users, manifest.n_items, **kwargs, **cls.settings(tcfg))
    model.build()
    return model
