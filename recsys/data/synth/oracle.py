"""Score with the truth: read ``planted.npz`` and compute what the planted model predicts.

Tests and evaluations compare a trained recommender against these oracles, so they work on the
saved file rather than on the in-memory model: anything that reads a synthetic data set folder
can use them. :func:`planted_selection_logits` is the oracle ranking (what a perfect recommender
would rank by), :func:`planted_preference` the taste alone and :func:`planted_expected_rating`
the noise-free rating. Item rows are in ``planted["item_ids"]`` order (movieId ascending), user
rows are userId - 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = [
    "load_planted",
    "planted_expected_rating",
    "planted_preference",
    "planted_selection_logits",
]


def load_planted(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read ``planted.npz`` (given the file or the folder holding it) into a dict of arrays."""
    p = Path(path)
    if p.is_dir():
        p = p / "planted.npz"
    with np.load(p, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def planted_preference(planted: dict[str, np.ndarray], user_idx: np.ndarray) -> np.ndarray:
    """The planted taste ``U_u . V_i + A_u . g_i`` of some users for every item.

    Args:
        planted: From :func:`load_planted`.
        user_idx: 0-based user rows (userId - 1), shape (n,).

    Returns:
        (n, n_items) float32, items in the order of ``planted["item_ids"]``.
    """
    u = np.asarray(user_idx)
    factors = planted["user_factors"][u] @ planted["item_factors"].T  # (n, n_items)
    affinity = planted["user_genre_affinity"][u] @ planted["item_genre_weights"].T  # (n, n_items)
    return (factors + affinity).astype(np.float32)


def planted_selection_logits(planted: dict[str, np.ndarray], user_idx: np.ndarray) -> np.ndarray:
    """Log-odds (up to a per-user constant) that each item is among a user's rated items.

    This is the oracle ranking: ``pop_weight * log(popularity) + pref_weight * preference``.

    Args:
        planted: From :func:`load_planted`.
        user_idx: 0-based user rows, shape (n,).

    Returns:
        (n, n_items) float32.
    """
    pop = float(planted["pop_weight"]) * np.log(planted["item_popularity"])  # (n_items,)
    pref = planted_preference(planted, user_idx)  # (n, n_items)
    return (float(planted["pref_weight"]) * pref + pop).astype(np.float32)


def planted_expected_rating(
    planted: dict[str, np.ndarray], user_idx: np.ndarray, item_idx: np.ndarray
) -> np.ndarray:
    """The noise-free rating ``mu + b_u + b_i + genre_bias . g_i + pref`` of (user, item) pairs.

    Args:
        planted: From :func:`load_planted`.
        user_idx: 0-based user rows, shape (n,).
        item_idx: 0-based item rows (positions in ``planted["item_ids"]``), shape (n,).

    Returns:
        (n,) float64, before noise, rounding and clipping.
    """
    u, i = np.asarray(user_idx), np.asarray(item_idx)
    g = planted["item_genre_weights"][i]  # (n, 18)
    pref = np.einsum("nd,nd->n", planted["user_factors"][u], planted["item_factors"][i])
    pref += np.einsum("ng,ng->n", planted["user_genre_affinity"][u], g)
    return (
        float(planted["global_mean"])
        + planted["user_bias"][u]
        + planted["item_bias"][i]
        + g @ planted["genre_bias"]
        + pref
    ).astype(np.float64)
