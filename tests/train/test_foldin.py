"""Fold-in of new users: the solver finds the minimiser of the per-user softmax loss."""

from __future__ import annotations

import numpy as np

from recsys.train.foldin import _lse, row_weights, solve_users


def _problem(seed=0, users=6, items=40, dim=5):
    rng = np.random.default_rng(seed)
    v = rng.normal(0, 0.7, (items, dim)).astype(np.float32)
    b = rng.normal(0, 1.0, items).astype(np.float32)
    chosen = [rng.choice(items, rng.integers(2, 9), replace=False) for _ in range(users)]
    mean_v = np.stack([v[c].mean(0) for c in chosen])
    mean_b = np.array([b[c].mean() for c in chosen], np.float32)
    return v, b, mean_v, mean_b


def _newton(v, b, mean_v, l2, iterations=50):
    """Exact Newton per user in float64 (the reference the fast solver must reach)."""
    v = v.astype(np.float64)
    out = []
    for m in mean_v.astype(np.float64):
        u = np.zeros(v.shape[1])
        for _ in range(iterations):
            _, p = _lse((u @ v.T + b)[None, :])
            mu = p[0] @ v
            grad = mu - m + 2 * l2 * u
            hess = (v.T * p[0]) @ v - np.outer(mu, mu) + 2 * l2 * np.eye(len(u))
            u = u - np.linalg.solve(hess, grad)
        out.append(u)
    return np.array(out)


def test_the_solution_is_the_minimiser_of_the_users_loss():
    v, b, mean_v, mean_b = _problem()
    u, start, end = solve_users(v, b, mean_v, mean_b, l2=0.05, iterations=40)
    want = _newton(v, b, mean_v, 0.05)
    np.testing.assert_allclose(u, want, atol=2e-3)
    assert np.all(end < start)  # every user moved away from the zero vector's loss
    _, p = _lse(u @ v.T + b)
    grad = p @ v - mean_v + 2 * 0.05 * u
    assert np.abs(grad).max() < 1e-3


def test_a_larger_penalty_gives_shorter_vectors():
    v, b, mean_v, mean_b = _problem(seed=1)
    short, _, _ = solve_users(v, b, mean_v, mean_b, l2=1.0)
    long, _, _ = solve_users(v, b, mean_v, mean_b, l2=0.01)
    assert np.all(np.linalg.norm(short, axis=1) < np.linalg.norm(long, axis=1))


def test_row_weights_follow_the_ranking_loss():
    rating = np.array([1.0, 3.0, 4.0, 5.0], np.float32)
    every = {"min_rating": float("nan"), "rating_weights": False, "mean_rating": 3.0}
    np.testing.assert_array_equal(row_weights(rating, every), [1, 1, 1, 1])
    liked = {**every, "min_rating": 4.0}
    np.testing.assert_array_equal(row_weights(rating, liked), [0, 0, 1, 1])
    weighted = {**every, "rating_weights": True}
    np.testing.assert_allclose(row_weights(rating, weighted), rating / 3.0)
