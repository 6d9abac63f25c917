"""Evaluation: rating and ranking metrics, and the baselines a model must beat (numpy/pandas only).

Nothing here imports Spark or TensorFlow, so the same code scores a model in the train step, in
the gate and in a notebook. ``protocol`` is the entry point; the other modules are its parts.
"""

from recsys.evaluate.baselines import EASE, BiasedBaseline, GlobalMean, MostPopular
from recsys.evaluate.protocol import (
    evaluate_baselines,
    evaluate_scorer,
    fit_ease,
    fit_recency_ease,
)
from recsys.evaluate.ranking import Interactions, ranking_metrics, seen_matrix, top_k
from recsys.evaluate.rating import mae, rmse
from recsys.evaluate.recency import RecencyEASE

__all__ = [
    "EASE",
    "BiasedBaseline",
    "GlobalMean",
    "Interactions",
    "MostPopular",
    "RecencyEASE",
    "evaluate_baselines",
    "evaluate_scorer",
    "fit_ease",
    "fit_recency_ease",
    "mae",
    "ranking_metrics",
    "rmse",
    "seen_matrix",
    "top_k",
]
