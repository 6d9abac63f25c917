"""RMSE and MAE on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recsys.evaluate.rating import mae, rmse


def test_rmse_and_mae_by_hand():
    y_true = [4.0, 3.0, 5.0]
    y_pred = [3.0, 5.0, 5.0]
    # errors: -1, +2, 0 -> squares 1, 4, 0 -> mean 5/3; absolutes 1, 2, 0 -> mean 1
    assert rmse(y_true, y_pred) == pytest.approx(math.sqrt(5 / 3), abs=1e-15)
    assert mae(y_true, y_pred) == pytest.approx(1.0, abs=1e-15)


def test_perfect_prediction_scores_zero():
    y = np.array([1.0, 2.5, 5.0], dtype=np.float32)
    assert rmse(y, y) == 0.0
    assert mae(y, y) == 0.0


def test_float32_inputs_accumulate_in_float64():
    # An error of 1e20 squares to 1e40, beyond float32's ~3.4e38: float32 arithmetic gives inf.
    y_true = np.zeros(2, dtype=np.float32)
    y_pred = np.full(2, 1e20, dtype=np.float32)
    assert rmse(y_true, y_pred) == pytest.approx(1e20, rel=1e-7)
    # Float32 truth against float64 predictions: a 2**-30 error vanishes if cast to float32.
    t = np.ones(2, dtype=np.float32)
    p = np.array([1 + 2**-30, 1 - 2**-30])
    assert mae(t, p) == pytest.approx(2**-30, rel=1e-12)


def test_returns_python_float():
    assert type(rmse([1.0], [2.0])) is float
    assert type(mae([1.0], [2.0])) is float


def test_length_mismatch_and_empty_are_errors():
    with pytest.raises(ValueError, match="one prediction per rated"):
        rmse([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        mae([], [])
