"""The planted model: the known truth every synthetic rating is drawn from.

What is planted (all of it saved in ``planted.npz`` by :func:`save_planted`):

* latent user and item factors ``U`` (n_users, dim) and ``V`` (n_items, dim), dim 16;
* user and item biases and a global mean;
* genres: every item has 1-3 of the 18 MovieLens genres (about 1 % have none, written as
  ``(no genres listed)``); each genre shifts every rating of its items (``genre_bias``) and each
  user has a genre affinity (``user_genre_affinity``) added to their score for items of that
  genre (averaged over the item's genres);
* Zipf-like item popularity, mildly correlated with item quality (item bias);
* per-user activity: ``min_per_user`` plus a lognormal number of extra ratings, summing to exactly
  ``n_ratings``, capped at a fraction of the catalogue;
* timestamps: each user is active over a window inside the shape's date range (mostly short,
  sometimes years), ratings cluster at the start of the window, strictly increasing per user.

Everything here is drawn from its own random stream (``[seed, 0]``), separate from the per-block
streams of :mod:`recsys.data.synth.sampling`, so the model does not depend on how ratings are
sampled and written. Reading the saved model back is :mod:`recsys.data.synth.oracle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recsys.data.synth.shapes import Shape

__all__ = ["GENRES", "NO_GENRES", "Planted", "plant", "save_planted"]

# The 18 MovieLens genres, in the alphabetical order MovieLens lists them within an item.
GENRES: tuple[str, ...] = (
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
NO_GENRES = "(no genres listed)"
# Relative genre frequencies, from the item counts of ml-25m (Drama is on ~40 % of movies).
_GENRE_FREQ = np.array(
    [7348, 4145, 2929, 2935, 16870, 5319, 5605, 25606, 2731, 353, 5989, 1054, 2925, 7719, 3595,
     8654, 1874, 1399],
    dtype=np.float64,
)  # fmt: skip
# Mean rating shift per genre (ml-25m: documentaries and film noir rate high, horror low).
_GENRE_BIAS = np.array(
    [-0.10, -0.02, 0.10, -0.15, -0.10, 0.08, 0.25, 0.12, -0.05, 0.25, -0.35, 0.02, 0.05, 0.0,
     -0.08, -0.05, 0.20, 0.05],
    dtype=np.float32,
)  # fmt: skip


@dataclass(frozen=True)
class Planted:
    """Every array of the planted model, plus the shape and seed it came from."""

    shape: Shape
    seed: int
    item_ids: np.ndarray  # (n_items,) int64, increasing with gaps
    item_years: np.ndarray  # (n_items,) int
    item_title_style: np.ndarray  # (n_items,) int8: 0 plain, 1 ", The", 2 embedded quotes
    item_genres: np.ndarray  # (n_items, 18) bool
    item_genre_weights: np.ndarray  # (n_items, 18) float32, rows sum to 1 (or 0: no genres)
    item_factors: np.ndarray  # (n_items, dim) float32
    item_bias: np.ndarray  # (n_items,) float32
    item_popularity: np.ndarray  # (n_items,) float64, sums to 1
    genre_bias: np.ndarray  # (18,) float32
    user_factors: np.ndarray  # (n_users, dim) float32
    user_bias: np.ndarray  # (n_users,) float32
    user_genre_affinity: np.ndarray  # (n_users, 18) float32
    user_n_ratings: np.ndarray  # (n_users,) int64, sums to n_ratings
    user_start: np.ndarray  # (n_users,) int64 unix seconds
    user_span: np.ndarray  # (n_users,) int64 seconds


def plant(shape: Shape, seed: int) -> Planted:
    """Draw the planted model (everything except the per-rating randomness)."""
    rng = np.random.default_rng([seed, 0])
    n_u, n_i, dim = shape.n_users, shape.n_items, shape.dim

    # Items: sparse increasing ids, release years that grow with the id, 1-3 genres.
    max_id = max(n_i, round(n_i * shape.id_spread))
    item_ids = np.sort(rng.choice(max_id, size=n_i, replace=False)).astype(np.int64) + 1
    end_year = int(shape.last_day[:4])
    rank = np.arange(n_i) / max(1, n_i - 1)
    years = 1915 + (end_year - 1915) * rank**0.6 + rng.normal(0, 4, n_i)
    item_years = np.clip(np.round(years), 1902, end_year).astype(np.int64)
    style_draw = rng.random(n_i)
    item_title_style = np.where(style_draw < 0.08, 1, np.where(style_draw < 0.09, 2, 0))
    n_genres = rng.choice([0, 1, 2, 3], size=n_i, p=[0.01, 0.40, 0.35, 0.24])
    genre_keys = np.log(_GENRE_FREQ / _GENRE_FREQ.sum()) + rng.gumbel(size=(n_i, len(GENRES)))
    genre_rank = np.argsort(np.argsort(-genre_keys, axis=1), axis=1)  # (n_items, 18)
    item_genres = genre_rank < n_genres[:, None]  # (n_items, 18) weighted draw w/o replacement
    weights = item_genres / np.maximum(1, n_genres)[:, None]
    item_genre_weights = weights.astype(np.float32)  # (n_items, 18)

    # Factors scaled so that U_u . V_i has standard deviation pref_sd.
    scale = (shape.pref_sd**2 / dim) ** 0.25
    item_factors = rng.normal(0, scale, (n_i, dim)).astype(np.float32)
    user_factors = rng.normal(0, scale, (n_u, dim)).astype(np.float32)
    item_bias = rng.normal(0, shape.item_bias_sd, n_i).astype(np.float32)
    user_bias = rng.normal(0, shape.user_bias_sd, n_u).astype(np.float32)
    affinity = rng.normal(0, shape.genre_affinity_sd, (n_u, len(GENRES))).astype(np.float32)

    # Zipf-Mandelbrot popularity over a random order that slightly favours good (high-bias) items.
    z = 0.3 * item_bias / max(shape.item_bias_sd, 1e-9) + rng.normal(0, 1, n_i)
    pop_rank = np.empty(n_i, np.int64)
    pop_rank[np.argsort(-z)] = np.arange(n_i)
    popularity = (pop_rank + 1.0 + shape.zipf_offset) ** -shape.zipf_exponent
    popularity /= popularity.sum()

    # Activity: min_per_user plus a lognormal share of the rest, capped, summing exactly.
    extra = _allocate(
        shape.n_ratings - n_u * shape.min_per_user,
        rng.lognormal(0.0, shape.activity_sigma, n_u),
        shape.max_per_user - shape.min_per_user,
    )
    user_n_ratings = extra + shape.min_per_user

    # Activity windows: mostly days to weeks, sometimes years, inside [t_start, t_end].
    period = shape.t_end - shape.t_start
    span = np.exp(rng.normal(np.log(30 * 86_400), 2.0, n_u))
    span = np.clip(span, 3_600, 0.8 * period).astype(np.int64)
    slack = np.maximum(0, period - span - user_n_ratings)
    user_start = shape.t_start + np.floor(rng.random(n_u) * slack).astype(np.int64)

    return Planted(
        shape=shape,
        seed=seed,
        item_ids=item_ids,
        item_years=item_years,
        item_title_style=item_title_style.astype(np.int8),
        item_genres=item_genres,
        item_genre_weights=item_genre_weights,
        item_factors=item_factors,
        item_bias=item_bias,
        item_popularity=popularity,
        genre_bias=_GENRE_BIAS.copy(),
        user_factors=user_factors,
        user_bias=user_bias,
        user_genre_affinity=affinity,
        user_n_ratings=user_n_ratings,
        user_start=user_start,
        user_span=span,
    )


def _allocate(total: int, weights: np.ndarray, cap: int) -> np.ndarray:
    """Split ``total`` into non-negative integers proportional to ``weights``, each <= ``cap``.

    Water-filling: find the scale ``lam`` with ``sum(min(lam * w, cap)) == total`` by bisection,
    floor, then give the remaining units to the largest fractional parts (largest remainder).

    Args:
        total: Units to hand out; must be <= len(weights) * cap.
        weights: Positive weights, shape (n,).
        cap: Upper bound per entry.

    Returns:
        (n,) int64 summing to exactly ``total``.
    """
    w = np.asarray(weights, np.float64)
    if total == 0:
        return np.zeros(len(w), np.int64)
    lo, hi = 0.0, total / w.min() + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.minimum(mid * w, cap).sum() >= total:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-12 * hi:
            break
    share = np.minimum(hi * w, cap)
    units = np.floor(share).astype(np.int64)
    missing = total - int(units.sum())
    if missing > 0:
        frac = np.where(units < cap, share - units, -1.0)
        units[np.argsort(-frac, kind="stable")[:missing]] += 1
    elif missing < 0:  # numerically impossible in practice; keep the contract anyway
        units[np.argsort(-units, kind="stable")[:-missing]] -= 1
    return units


def save_planted(path: Path, m: Planted) -> None:
    """Save the planted model as an uncompressed ``.npz`` (random floats do not compress)."""
    shape = m.shape
    with open(path, "wb") as fh:
        np.savez(
            fh,
            user_ids=np.arange(1, shape.n_users + 1, dtype=np.int64),
            item_ids=m.item_ids,
            user_factors=m.user_factors,
            item_factors=m.item_factors,
            user_bias=m.user_bias,
            item_bias=m.item_bias,
            global_mean=np.float64(shape.global_mean),
            genres=np.array(GENRES),
            item_genres=m.item_genres,
            item_genre_weights=m.item_genre_weights,
            genre_bias=m.genre_bias,
            user_genre_affinity=m.user_genre_affinity,
            item_popularity=m.item_popularity,
            pop_weight=np.float64(shape.pop_weight),
            pref_weight=np.float64(shape.pref_weight),
            noise_sd=np.float64(shape.noise_sd),
            half_stars=np.bool_(shape.half_stars),
            user_n_ratings=m.user_n_ratings,
            user_start=m.user_start,
            user_span=m.user_span,
            seed=np.int64(m.seed),
        )
