"""Fold-in: the vectors of users new tonight, solved against the warm-started item vectors.

A warm start copies last night's rows, but a user new tonight has only a fresh random row, and the
few epochs of a warm run at a reduced step leave it far from where a cold run's 40 epochs put it
(measured: docs/tuning.md). With the item vectors fixed, each new user's row is the minimiser of
a convex loss, the full softmax of the ranking objective over the user's rows plus its per-row L2
penalty:

    L(u) = sum_i w_i [logsumexp_j(u . v_j + b_j) - (u . v_i + b_i) + l2 |u|^2]

solved here in numpy (preconditioned gradient steps, one shared d x d preconditioner, a step
size per user that grows on success and halves on failure) before training continues. Only the
factor models under the ranking objective qualify (``mf``, ``biased-mf``: the user row is the
exported user vector); other models keep fresh rows.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from recsys import schema as S
from recsys.families import FAMILIES

log = logging.getLogger(__name__)

ITERATIONS = 15
# Users solved at once: bounds the (users, items) score block to ~256 MB at 64k items.
USER_CHUNK = 1024


def row_weights(rating: np.ndarray, ranking: dict[str, Any]) -> np.ndarray:
    """The ranking loss's per-row weight in numpy (as ``RankingLoss.weights``)."""
    w = np.ones(rating.shape, np.float32)
    if not math.isnan(ranking["min_rating"]):
        w[rating < ranking["min_rating"]] = 0.0
    if ranking["rating_weights"]:
        w *= rating / ranking["mean_rating"]
    return w


def _lse(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise logsumexp and softmax of a (c, n) block."""
    top = scores.max(axis=1, keepdims=True)
    p = np.exp(scores - top)
    z = p.sum(axis=1, keepdims=True)
    p /= z
    return (top + np.log(z))[:, 0], p


def solve_users(
    v: np.ndarray,
    b: np.ndarray,
    mean_v: np.ndarray,
    mean_b: np.ndarray,
    l2: float,
    iterations: int = ITERATIONS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User vectors minimising the mean per-row loss ``lse(u V^T + b) - (u . mean_v + mean_b) +
    l2 |u|^2`` (``mean_v`` (c, d): each user's weighted mean chosen item vector).

    Returns ``(u (c, d), loss at u = 0 (c,), final loss (c,))``.
    """
    c, d = mean_v.shape
    eye = 2.0 * l2 * np.eye(d, dtype=np.float64)
    # Preconditioner: the Hessian at u = 0, where every user's softmax is softmax(b).
    _, p0 = _lse(b[None, :].astype(np.float64))
    mu0 = p0[0] @ v
    hess = (v.T * p0[0]) @ v - np.outer(mu0, mu0) + eye
    precond = np.linalg.inv(hess).astype(np.float32)

    def loss_and_p(u):
        lse, p = _lse(u @ v.T + b[None, :])
        return lse - np.einsum("cd,cd->c", u, mean_v) - mean_b + l2 * np.einsum("cd,cd->c", u, u), p

    u = np.zeros((c, d), np.float32)
    loss, p = loss_and_p(u)
    start = loss.copy()
    step = np.ones(c, np.float32)
    for _ in range(iterations):
        grad = p @ v - mean_v + 2.0 * l2 * u  # (c, d)
        trial = u - step[:, None] * (grad @ precond)
        trial_loss, trial_p = loss_and_p(trial)
        ok = trial_loss <= loss
        u[ok], loss[ok], p[ok] = trial[ok], trial_loss[ok], trial_p[ok]
        step = np.where(ok, np.minimum(step * 1.5, 8.0), step * 0.5).astype(np.float32)
    return u, start, loss


def fold_in_users(
    model: Any,
    new_users: np.ndarray,
    rows: dict[str, np.ndarray],
    ranking: dict[str, Any],
) -> dict[str, Any]:
    """Set ``model``'s rows of ``new_users`` to their fold-in solution; returns the record.

    ``rows``: the training rows (user, item and rating columns). Users without a weighted row keep
    their fresh rows.
    """
    name = getattr(model, "family", "")
    if name not in FAMILIES or not FAMILIES[name].fold_in or model.objective != "ranking":
        return {"users": 0, "reason": f"{getattr(model, 'family', '?')} has no fold-in"}
    rows = {c: np.asarray(rows[c]) for c in (S.USER_IDX, S.ITEM_IDX, S.RATING)}
    arrays = model.export_arrays()
    v = arrays["item_factors"].astype(np.float32)
    b = arrays.get("item_bias", np.zeros(len(v), np.float32)).astype(np.float32)
    keep = np.isin(rows[S.USER_IDX], new_users)
    users, items = rows[S.USER_IDX][keep], rows[S.ITEM_IDX][keep]
    w = row_weights(rows[S.RATING][keep].astype(np.float32), ranking)
    solved = np.unique(users[w > 0])
    if not solved.size:
        return {"users": 0, "reason": "no new user has a training row"}
    slot = np.searchsorted(solved, users)
    ok = w > 0
    weight = np.bincount(slot[ok], w[ok], minlength=len(solved)).astype(np.float32)
    mean_v = np.zeros((len(solved), v.shape[1]), np.float32)
    np.add.at(mean_v, slot[ok], v[items[ok]] * w[ok, None])
    mean_v /= weight[:, None]
    mean_b = np.bincount(slot[ok], w[ok] * b[items[ok]], minlength=len(solved)) / weight
    table = np.array(model.user_emb)
    before, after = [], []
    for lo in range(0, len(solved), USER_CHUNK):
        hi = lo + USER_CHUNK
        u, start, end = solve_users(v, b, mean_v[lo:hi], mean_b[lo:hi].astype(np.float32), model.l2)
        table[solved[lo:hi]] = u
        before.append(start)
        after.append(end)
    model.user_emb.assign(table)
    before, after = np.concatenate(before), np.concatenate(after)
    record = {
        "users": int(len(solved)),
        "loss_before": round(float(np.average(before, weights=weight)), 4),
        "loss_after": round(float(np.average(after, weights=weight)), 4),
    }
    log.info(
        "warm start: folded in %d new users (mean loss %.4f at a zero vector -> %.4f)",
        record["users"],
        record["loss_before"],
        record["loss_after"],
    )
    return record
