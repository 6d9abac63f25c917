"""Sizes and planted-model settings of synthetic data sets, and the MovieLens-like presets.

A :class:`Shape` is validated when it is built, so an impossible request (fewer ratings than
users x ``min_per_user``, dates out of order) fails with one sentence before any work is done,
rather than half way through writing a multi-gigabyte ``ratings.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from recsys.errors import RecsysError

__all__ = ["SHAPES", "Shape", "shape_from_counts"]


@dataclass(frozen=True)
class Shape:
    """Size and planted-model settings of a synthetic data set.

    The first four fields are what a MovieLens release is described by; the rest have defaults
    tuned so that summary statistics (rating mean/spread, activity and popularity skew) look like
    MovieLens and so that taste, not only popularity, decides what users rate.

    Attributes:
        n_users: Users, ids 1..n_users.
        n_items: Movies in ``movies.csv`` (a few of the least popular may get no rating).
        n_ratings: Rows of ``ratings.csv``, exactly.
        half_stars: 0.5-5.0 in half stars (ml-latest, ml-25m) or whole stars 1-5 (ml-1m).
        min_per_user: Every user rates at least this many items (20 in MovieLens).
        dim: Latent factor dimension.
        max_user_fraction: No user rates more than this fraction of the catalogue.
        activity_sigma: Lognormal sigma of each user's extra ratings (activity skew).
        zipf_exponent: Item popularity is proportional to (rank + zipf_offset) ** -zipf_exponent
            (Zipf-Mandelbrot: the offset flattens the head so the top movie is rated by about
            half the users, as in MovieLens, while the exponent sets how thin the tail is).
        zipf_offset: See ``zipf_exponent``.
        pop_weight: Weight of log popularity in the choice of rated items.
        pref_weight: Weight of the planted preference in the choice of rated items.
        global_mean: mu, the rating intercept. Observed means come out about 0.7 higher,
            because users choose items they like (2.85 gives MovieLens' 3.5).
        user_bias_sd: Spread of user biases.
        item_bias_sd: Spread of item biases.
        pref_sd: Spread of the factor term U_u . V_i.
        genre_affinity_sd: Spread of each user's per-genre affinity.
        noise_sd: Rating noise before rounding.
        first_day: First day (UTC, ISO) of the rating period.
        last_day: Last day (UTC, ISO) of the rating period.
        id_spread: Movie ids are drawn from 1..round(n_items * id_spread), increasing with gaps.
        name: Label used in logs.
    """

    n_users: int
    n_items: int
    n_ratings: int
    half_stars: bool
    min_per_user: int = 20
    dim: int = 16
    max_user_fraction: float = 0.6
    activity_sigma: float = 1.25
    zipf_exponent: float = 1.2
    zipf_offset: float = 40.0
    pop_weight: float = 1.0
    pref_weight: float = 2.0
    global_mean: float = 2.85
    user_bias_sd: float = 0.35
    item_bias_sd: float = 0.4
    pref_sd: float = 0.5
    genre_affinity_sd: float = 0.45
    noise_sd: float = 0.75
    first_day: str = "1996-01-01"
    last_day: str = "2023-12-31"
    id_spread: float = 3.0
    name: str = "custom"

    def __post_init__(self) -> None:
        """Reject shapes that cannot be generated, with one sentence saying why."""
        for field in ("n_users", "n_items", "n_ratings", "min_per_user", "dim"):
            value = getattr(self, field)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise RecsysError(f"shape {self.name}: {field} must be a positive integer")
        if self.n_items < self.min_per_user:
            raise RecsysError(
                f"shape {self.name}: {self.n_items} items cannot give every user "
                f"{self.min_per_user} distinct ratings; use more items or a lower min_per_user"
            )
        low, high = self.n_users * self.min_per_user, self.n_users * self.max_per_user
        if not low <= self.n_ratings <= high:
            raise RecsysError(
                f"shape {self.name}: {self.n_ratings} ratings do not fit {self.n_users} users "
                f"with {self.min_per_user}..{self.max_per_user} ratings each; use between "
                f"{low} and {high} ratings"
            )
        spreads = ("user_bias_sd", "item_bias_sd", "pref_sd", "genre_affinity_sd", "noise_sd")
        if min(getattr(self, f) for f in (*spreads, "activity_sigma", "zipf_offset")) < 0:
            raise RecsysError(f"shape {self.name}: spreads and zipf_offset must be >= 0")
        if not 0.0 < self.max_user_fraction <= 1.0:
            raise RecsysError(f"shape {self.name}: max_user_fraction must be in (0, 1]")
        if self.id_spread < 1.0:
            raise RecsysError(f"shape {self.name}: id_spread must be >= 1, got {self.id_spread}")
        if self.t_end <= self.t_start:
            raise RecsysError(f"shape {self.name}: last_day must be after first_day")

    @property
    def max_per_user(self) -> int:
        """Most ratings one user may have (a fraction of the catalogue, at least min_per_user)."""
        return max(self.min_per_user, int(self.max_user_fraction * self.n_items))

    @property
    def t_start(self) -> int:
        """First second of the rating period (unix time)."""
        return _day_to_unix(self.first_day)

    @property
    def t_end(self) -> int:
        """Last second of the rating period (unix time)."""
        return _day_to_unix(self.last_day) + 86_399


def _day_to_unix(day: str) -> int:
    """Unix seconds of midnight UTC of an ISO date."""
    try:
        parsed = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise RecsysError(f"shape date {day!r} is not an ISO date like 1996-01-01") from exc
    return int(parsed.timestamp())


SHAPES: dict[str, Shape] = {
    "ml-latest-small": Shape(610, 9_742, 100_836, True, id_spread=19.9, name="ml-latest-small"),
    "ml-1m": Shape(
        6_040,
        3_706,
        1_000_209,
        False,
        global_mean=3.0,
        first_day="2000-04-25",
        last_day="2003-02-28",
        id_spread=3_952 / 3_706,
        name="ml-1m",
    ),
    # A thinner popularity tail than the small set: many of ml-25m's 59k movies have few ratings
    # (median ~14 here, ~40 % under 10) while 10 % of the movies get ~90 % of the ratings.
    "ml-25m": Shape(
        162_541,
        59_047,
        25_000_095,
        True,
        zipf_exponent=2.0,
        zipf_offset=200.0,
        id_spread=3.55,
        name="ml-25m",
    ),
}


def shape_from_counts(
    n_users: int, n_items: int, n_ratings: int, half_stars: bool = True, **overrides: object
) -> Shape:
    """A custom shape of the given size with MovieLens-like defaults for everything else.

    Args:
        n_users: Users.
        n_items: Movies.
        n_ratings: Rating rows, exactly.
        half_stars: Half-star scale (True) or whole stars 1-5.
        **overrides: Any other :class:`Shape` field, e.g. ``min_per_user=5`` or
            ``pref_weight=0.0`` (choices driven by popularity only).

    Returns:
        The validated shape.

    Raises:
        RecsysError: The counts cannot be generated (e.g. fewer ratings than users x 20).
    """
    overrides.setdefault("name", f"{n_users}x{n_items}x{n_ratings}")
    return Shape(n_users, n_items, n_ratings, half_stars, **overrides)  # type: ignore[arg-type]
