"""The baselines every model must beat before it is published.

A trained model is only worth serving if it does better than what needs no training:

* ``GlobalMean`` predicts the train mean for every pair: the floor for RMSE/MAE.
* ``BiasedBaseline`` predicts ``mu + b_u + b_i`` (Koren's baseline predictors): most of the
  RMSE gain of matrix factorisation over the global mean comes from these biases alone, so a
  factor model that does not beat it has learnt no interaction.
* ``MostPopular`` recommends the items most often interacted with in train: the floor for the
  ranking metrics, and the list the gate compares a model against.
* ``EASE`` (Steck 2019) is the strongest simple top-N baseline: a closed-form item-item model
  fitted in seconds on a small catalogue. It is information for a person (is the trained model
  worth its training?), not a gate: its Gram matrix is ``n_items^2`` floats, so it is skipped
  above ``EASE_MAX_ITEMS`` (see ``recsys.evaluate.protocol.fit_ease``).

All are fitted from a pandas frame with the prepared columns (``recsys.schema``); user and item
indices are the contiguous ones assigned by prepare, so parameters are plain arrays indexed by
them. A user or item absent from train gets a zero bias / zero count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.evaluate.ranking import Interactions, seen_matrix


def _column(frame: pd.DataFrame, col: str) -> np.ndarray:
    if col not in frame.columns:
        raise RecsysError(
            f"The ratings frame has no column {col!r} (columns: {list(frame.columns)}); "
            "pass the column name as col_user/col_item/col_rating."
        )
    return frame[col].to_numpy()


def _nonempty(frame: pd.DataFrame) -> None:
    if len(frame) == 0:
        raise RecsysError("The train ratings are empty, so no baseline can be fitted.")


def _indices(values: ArrayLike, bound: int, name: str) -> np.ndarray:
    ids = np.asarray(values).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= bound):
        raise ValueError(f"{name} holds ids outside [0, {bound}).")
    return ids.astype(np.int64)


class GlobalMean:
    """Predicts the mean train rating for every pair: the RMSE any model must beat."""

    def __init__(self, col_rating: str = S.RATING) -> None:
        self.col_rating = col_rating
        self.mu: float | None = None

    def fit(self, train_df: pd.DataFrame) -> GlobalMean:
        """Remember the train mean (float64). Returns ``self``."""
        _nonempty(train_df)
        self.mu = float(np.mean(_column(train_df, self.col_rating), dtype=np.float64))
        return self

    def predict(self, user_idx: ArrayLike, item_idx: ArrayLike) -> np.ndarray:
        """``mu`` for every ``(user, item)`` pair, shape ``(n,)`` float64."""
        if self.mu is None:
            raise RuntimeError("GlobalMean.predict called before fit.")
        n = np.asarray(user_idx).size
        if np.asarray(item_idx).size != n:
            raise ValueError("user_idx and item_idx must have the same length.")
        return np.full(n, self.mu, dtype=np.float64)


class BiasedBaseline:
    """``mu + b_u + b_i`` with ridge-regularised biases, fitted by alternating least squares.

    Each half-step is the exact ridge solution for one side given the other (Koren, "Factor in
    the Neighbors", TKDD 2010, sec. 2.1):

        b_i = sum_{u in R(i)} (r_ui - mu - b_u) / (reg_item + |R(i)|)
        b_u = sum_{i in R(u)} (r_ui - mu - b_i) / (reg_user + |R(u)|)

    Koren's single pass (items first, from zero user biases) is ``n_iter=1``; a few more rounds
    converge to the joint ridge optimum, which is what a bias-only model trained by gradient
    descent would reach. The regularisers shrink the biases of users and items with few
    ratings towards zero, so that one 5-star rating does not make an item look excellent.

    Args:
        reg_item: Item shrinkage, Koren's lambda_2 = 25 for the Netflix data: an item needs
            about 25 ratings before its bias is trusted at half weight.
        reg_user: User shrinkage, Koren's lambda_3 = 10: users rate more consistently than
            items are rated, so they need fewer ratings.
        n_iter: Alternating rounds; the change after 10 is far below rating precision.
    """

    def __init__(
        self,
        reg_item: float = 25.0,
        reg_user: float = 10.0,
        n_iter: int = 10,
        col_user: str = S.USER_IDX,
        col_item: str = S.ITEM_IDX,
        col_rating: str = S.RATING,
    ) -> None:
        if reg_item < 0 or reg_user < 0 or n_iter < 1:
            raise ValueError("reg_item and reg_user must be >= 0 and n_iter >= 1.")
        self.reg_item = reg_item
        self.reg_user = reg_user
        self.n_iter = n_iter
        self.col_user = col_user
        self.col_item = col_item
        self.col_rating = col_rating
        self.mu: float | None = None
        self.user_bias: np.ndarray | None = None  # (n_users,) float64
        self.item_bias: np.ndarray | None = None  # (n_items,) float64

    def fit(self, train_df: pd.DataFrame, n_users: int, n_items: int) -> BiasedBaseline:
        """Fit ``mu``, ``user_bias`` and ``item_bias`` on the train ratings. Returns ``self``."""
        _nonempty(train_df)
        u = _indices(_column(train_df, self.col_user), n_users, self.col_user)
        i = _indices(_column(train_df, self.col_item), n_items, self.col_item)
        r = _column(train_df, self.col_rating).astype(np.float64)
        self.mu = float(r.mean())
        resid = r - self.mu  # (n,)
        n_u = np.bincount(u, minlength=n_users)  # (n_users,)
        n_i = np.bincount(i, minlength=n_items)  # (n_items,)
        b_u = np.zeros(n_users)
        b_i = np.zeros(n_items)
        for _ in range(self.n_iter):
            b_i = _ridge_mean(i, resid - b_u[u], n_i, self.reg_item)
            b_u = _ridge_mean(u, resid - b_i[i], n_u, self.reg_user)
        self.user_bias, self.item_bias = b_u, b_i
        return self

    def _check_fitted(self) -> None:
        if self.user_bias is None:
            raise RuntimeError("BiasedBaseline used before fit.")

    def predict(self, user_idx: ArrayLike, item_idx: ArrayLike) -> np.ndarray:
        """Predicted ratings ``mu + b_u + b_i``, shape ``(n,)`` float64."""
        self._check_fitted()
        u = _indices(user_idx, self.user_bias.size, "user_idx")
        i = _indices(item_idx, self.item_bias.size, "item_idx")
        if u.shape != i.shape:
            raise ValueError("user_idx and item_idx must have the same length.")
        return self.mu + self.user_bias[u] + self.item_bias[i]

    def score_block(self, user_ids: ArrayLike) -> np.ndarray:
        """Predicted ratings of every item for a block of users, ``(b, n_items)`` float32.

        Within a user the order is that of ``b_i``: the biased baseline ranks like a
        rating-adjusted popularity list.
        """
        self._check_fitted()
        u = _indices(user_ids, self.user_bias.size, "user_ids")
        scores = self.mu + self.user_bias[u][:, None] + self.item_bias[None, :]  # (b, n_items)
        return scores.astype(np.float32)


def _ridge_mean(group: np.ndarray, values: np.ndarray, counts: np.ndarray, reg: float):
    """Per-group ``sum(values) / (reg + count)``; groups with no rows get 0."""
    sums = np.bincount(group, weights=values, minlength=counts.size)
    denom = counts + reg
    return np.divide(sums, denom, out=np.zeros_like(sums), where=denom > 0)


class MostPopular:
    """Scores every item by its train interaction count, the same for every user.

    The simplest list that is hard to beat on ranking metrics (popular items are popular in
    test too), so the nightly gate refuses a model that ranks worse than it.
    """

    def __init__(self, col_item: str = S.ITEM_IDX) -> None:
        self.col_item = col_item
        self.counts: np.ndarray | None = None  # (n_items,) int64

    def fit(self, train_df: pd.DataFrame, n_users: int, n_items: int) -> MostPopular:
        """Count train interactions per item. ``n_users`` is accepted for a uniform ``fit``."""
        del n_users  # same fit signature as the other baselines; popularity is per item
        _nonempty(train_df)
        i = _indices(_column(train_df, self.col_item), n_items, self.col_item)
        self.counts = np.bincount(i, minlength=n_items)
        return self

    def score_block(self, user_ids: ArrayLike) -> np.ndarray:
        """The count vector for each user, ``(b, n_items)`` float32 (a read-only broadcast)."""
        if self.counts is None:
            raise RuntimeError("MostPopular.score_block called before fit.")
        n = np.asarray(user_ids).size
        return np.broadcast_to(self.counts.astype(np.float32), (n, self.counts.size))


# EASE's lambda when no validation split can choose one: Steck's value for ML-20M; on ML-100K
# the validation grid picks 300 under leave-last and the stratified test curve is flat from 300
# to 500 (docs/quality.md).
EASE_LAMBDA = 500.0
# Grid searched on the validation split, about x3 apart (each point is one n_items^3 inversion).
EASE_LAMBDAS = (100.0, 300.0, 1000.0, 3000.0)
# Largest catalogue EASE is fitted for. Peak memory is about 34 bytes x n_items^2 (the float64 Gram,
# its inverse, LAPACK's copy, the float32 weights): 0.8 GB at 5,000 items, where one inversion took
# 12 s on the 2-core machine (57 s and 2 GB at 8,000; benchmarks/ease_bench.py, docs/quality.md).
EASE_MAX_ITEMS = 5_000


def dense_rows(seen: Interactions, users: ArrayLike) -> np.ndarray:
    """The binary rows of ``users`` as a dense ``(b, n_items)`` float32 matrix."""
    users = np.asarray(users, np.int64).ravel()
    start, stop = seen.indptr[users], seen.indptr[users + 1]
    lens = stop - start  # (b,)
    # positions of every (user, item) entry of the block in seen.indices
    offsets = np.repeat(start - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
    out = np.zeros((users.size, seen.n_items), np.float32)
    out[np.repeat(np.arange(users.size), lens), seen.indices[offsets]] = 1.0
    return out


def item_gram(seen: Interactions, block_users: int = 1024) -> np.ndarray:
    """``X^T X`` of the binary user x item matrix, ``(n_items, n_items)`` float64.

    Dense blocks of users through BLAS: float32 counts are exact up to 2^24 per block, and the
    blocks accumulate in float64. Cost ``2 n_users n_items^2`` flops.
    """
    n = seen.n_items
    gram = np.zeros((n, n), np.float64)
    for start in range(0, seen.n_users, block_users):
        x = dense_rows(seen, np.arange(start, min(start + block_users, seen.n_users)))  # (b, n)
        gram += x.T @ x
    return gram


class EASE:
    """Steck's EASE^R: item-item weights ``B`` that rebuild each user's row from the others.

    ``B = argmin ||X - X B||^2 + lam ||B||^2`` subject to ``diag(B) = 0`` on the binary train
    matrix ``X`` has the closed form ``B = I - P / diag(P)`` (column ``j`` divided by
    ``P_jj``) with ``P = (X^T X + lam I)^-1``; a user's scores are ``X_u B`` (Steck, "Embarrassingly
    Shallow Autoencoders for Sparse Data", WWW 2019). No training loop, one hyper-parameter, and
    on MovieLens it ranks as well as most trained recommenders: the bar a trained model must clear
    to be worth its training. An item with no train row gets a zero column (score 0).

    Args:
        lam: The ridge weight; larger shrinks ``B`` towards co-occurrence counts.
    """

    def __init__(
        self, lam: float = EASE_LAMBDA, col_user: str = S.USER_IDX, col_item: str = S.ITEM_IDX
    ):
        if not lam > 0:
            raise ValueError(f"EASE needs lam > 0, got {lam}.")
        self.lam = float(lam)
        self.col_user = col_user
        self.col_item = col_item
        self.seen: Interactions | None = None
        self.weights: np.ndarray | None = None  # (n_items, n_items) float32, zero diagonal

    def interactions(self, train_df: pd.DataFrame, n_users: int, n_items: int) -> Interactions:
        """The binary train matrix ``X`` (a repeated pair counts once)."""
        _nonempty(train_df)
        u = _indices(_column(train_df, self.col_user), n_users, self.col_user)
        i = _indices(_column(train_df, self.col_item), n_items, self.col_item)
        return seen_matrix(u, i, n_users, n_items)

    def fit(
        self,
        train_df: pd.DataFrame,
        n_users: int,
        n_items: int,
        gram: np.ndarray | None = None,
        seen: Interactions | None = None,
    ) -> EASE:
        """Solve for ``B``. ``gram``/``seen`` (from ``item_gram``/``interactions``) let a lambda
        grid share them; ``gram`` is left as it was. Returns ``self``."""
        self.seen = self.interactions(train_df, n_users, n_items) if seen is None else seen
        g = item_gram(self.seen) if gram is None else gram  # (n, n) float64
        diag = np.diag_indices(n_items)
        g[diag] += self.lam
        try:
            p = np.linalg.inv(g)  # (n, n) float64
        finally:
            g[diag] -= self.lam
        p /= -np.diag(p)[None, :]  # B_ij = -P_ij / P_jj
        p[diag] = 0.0
        self.weights = p.astype(np.float32)
        return self

    def score_block(self, user_ids: ArrayLike) -> np.ndarray:
        """``X_u B`` for a block of users, ``(b, n_items)`` float32."""
        if self.weights is None:
            raise RuntimeError("EASE.score_block called before fit.")
        return dense_rows(self.seen, user_ids) @ self.weights
