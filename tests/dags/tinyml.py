"""A small ml-latest-small-shaped data set with taste groups a model can learn in seconds.

120 users in 4 groups; each user rates 10 of their group's 15 movies and 1 movie of any group,
in random order, so leave-last holds out a movie of the user's group most of the time: a model
that learns the groups ranks it high, the popularity list (flat across groups) does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_USERS, GROUPS, PER_GROUP = 120, 4, 15
GENRES = ("Comedy", "Drama", "Action", "Romance")


def write_tiny_movielens(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["userId,movieId,rating,timestamp"]
    ts = 1_600_000_000
    for user in range(1, N_USERS + 1):
        group = user % GROUPS
        own = rng.choice(PER_GROUP, size=10, replace=False) + group * PER_GROUP + 1
        other = int(rng.integers(1, GROUPS * PER_GROUP + 1))
        items = list(dict.fromkeys([*own.tolist(), other]))
        for item in rng.permutation(items):
            ts += int(rng.integers(60, 3600))
            lines.append(f"{user},{item},{rng.integers(3, 6)}.0,{ts}")
    (folder / "ratings.csv").write_text("\n".join(lines) + "\n")
    movies = ["movieId,title,genres"]
    for item in range(1, GROUPS * PER_GROUP + 1):
        movies.append(f"{item},Movie {item} ({1980 + item}),{GENRES[(item - 1) // PER_GROUP]}")
    (folder / "movies.csv").write_text("\n".join(movies) + "\n")
    return folder
