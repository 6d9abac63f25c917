"""Rating-prediction metrics: RMSE and MAE.

These score the classic explicit-feedback models (matrix factorisation trained on squared error)
on the held-out ratings. Both accumulate in float64 whatever the input dtype: prepared ratings and
Keras predictions are float32, and squaring float32 errors overflows or loses digits on large
inputs, which would make the same model score differently depending on the dtype it was fed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _errors(y_true: ArrayLike, y_pred: ArrayLike) -> np.ndarray:
    """Prediction errors as float64, after checking both sides describe the same rows."""
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape:
        raise ValueError(
            f"y_true has {t.size} values but y_pred has {p.size}; "
            "pass one prediction per rated (user, item) row."
        )
    if t.size == 0:
        raise ValueError("No ratings to score: y_true and y_pred are empty.")
    return p - t  # (n,)


def rmse(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Root mean squared error, the objective the MSE-trained models minimise.

    Args:
        y_true: Observed ratings.
        y_pred: Predicted ratings, one per observed rating, in the same order.

    Returns:
        ``sqrt(mean((y_pred - y_true) ** 2))`` computed in float64.
    """
    err = _errors(y_true, y_pred)
    return float(np.sqrt(np.mean(err * err)))


def mae(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute error: less dominated than RMSE by a few large misses.

    Args:
        y_true: Observed ratings.
        y_pred: Predicted ratings, one per observed rating, in the same order.

    Returns:
        ``mean(abs(y_pred - y_true))`` computed in float64.
    """
    return float(np.mean(np.abs(_errors(y_true, y_pred))))
