"""Tests of the synthetic MovieLens generator, :mod:`recsys.data.synth`.

Run: ``PYTHONPATH=. python -m pytest tests/data/test_synth.py -q`` (a few seconds; small shapes).

Besides the file format, the point is the planted structure: held-out rows must be predictable
from the planted model clearly better than from popularity, as on real MovieLens, otherwise the
data set cannot tell a good recommender from the most-popular list.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.synth import (
    GENRES,
    HALF_STAR_EPOCH,
    NO_GENRES,
    SHAPES,
    Shape,
    SynthResult,
    load_planted,
    planted_expected_rating,
    planted_selection_logits,
    shape_from_counts,
    synthesize,
)
from recsys.errors import RecsysError

# Small stand-ins: ml-latest-like (half stars) and ml-1m-like (whole stars).
HALF = shape_from_counts(500, 3_000, 40_000)
WHOLE = shape_from_counts(300, 1_500, 20_000, half_stars=False)
TINY = shape_from_counts(60, 400, 3_000)


def read_ratings(path: Path) -> pd.DataFrame:
    """ratings.csv as text columns plus parsed ones (user, item, rating, ts)."""
    text = pd.read_csv(path / "ratings.csv", dtype=str, keep_default_na=False)
    df = text.astype({"userId": np.int64, "movieId": np.int64, "timestamp": np.int64})
    df["rating_text"] = text["rating"]
    df["rating"] = text["rating"].astype(np.float64)
    return df


@pytest.fixture(scope="module")
def half(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthResult, pd.DataFrame]:
    """The half-star data set, generated once for the module."""
    result = synthesize(tmp_path_factory.mktemp("half"), HALF, seed=3)
    return result, read_ratings(result.path)


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[SynthResult, pd.DataFrame]:
    """The whole-star (ml-1m-like) data set."""
    result = synthesize(tmp_path_factory.mktemp("whole"), WHOLE, seed=5)
    return result, read_ratings(result.path)


def item_positions(planted: dict[str, np.ndarray], movie_ids: pd.Series) -> np.ndarray:
    """Row of each movieId in the planted item arrays."""
    pos = np.searchsorted(planted["item_ids"], movie_ids.to_numpy())
    assert (planted["item_ids"][pos] == movie_ids.to_numpy()).all()
    return pos


def oracle_logits(planted: dict[str, np.ndarray]) -> np.ndarray:
    """Selection log-odds from the raw planted arrays (independent of the module's helpers)."""
    pref = planted["user_factors"] @ planted["item_factors"].T  # (n_users, n_items)
    pref += planted["user_genre_affinity"] @ planted["item_genre_weights"].T
    pop = np.log(planted["item_popularity"])  # (n_items,)
    return float(planted["pref_weight"]) * pref + float(planted["pop_weight"]) * pop


def holdout_metrics(df: pd.DataFrame, planted: dict[str, np.ndarray], scores: dict) -> dict:
    """HR@10 and NDCG@10 per scorer on the last 20 % of each user's rows (by timestamp).

    Args:
        df: Ratings as read by :func:`read_ratings`.
        planted: The planted model (for the id maps).
        scores: name -> (n_users, n_items) score matrix, or the string "popularity" for train
            counts.

    Returns:
        name -> (hit rate, NDCG), ranking only items the user did not rate in train.
    """
    n_users, n_items = len(planted["user_ids"]), len(planted["item_ids"])
    df = df.sort_values(["userId", "timestamp"])
    u = df["userId"].to_numpy() - 1
    i = item_positions(planted, df["movieId"])
    pos = df.groupby("userId").cumcount().to_numpy()
    size = df.groupby("userId")["userId"].transform("size").to_numpy()
    test = pos >= np.ceil(0.8 * size)
    seen = np.zeros((n_users, n_items), bool)
    seen[u[~test], i[~test]] = True
    held = np.zeros((n_users, n_items), bool)
    held[u[test], i[test]] = True
    discount = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.cumsum(discount)[np.minimum(held.sum(1), 10) - 1]
    out = {}
    for name, score in scores.items():
        if isinstance(score, str):
            score = np.broadcast_to(np.bincount(i[~test], minlength=n_items), seen.shape)
        ranked = np.where(seen, -np.inf, score.astype(np.float64))
        top = np.argsort(-ranked, axis=1, kind="stable")[:, :10]  # (n_users, 10)
        hits = np.take_along_axis(held, top, axis=1)
        out[name] = (hits.any(1).mean(), ((hits * discount).sum(1) / ideal).mean())
    return out


def test_named_shapes_match_movielens() -> None:
    """The three named shapes have MovieLens' published counts and rating scales."""
    expected = {
        "ml-latest-small": (610, 9_742, 100_836, True),
        "ml-1m": (6_040, 3_706, 1_000_209, False),
        "ml-25m": (162_541, 59_047, 25_000_095, True),
    }
    got = {k: (s.n_users, s.n_items, s.n_ratings, s.half_stars) for k, s in SHAPES.items()}
    assert got == expected
    assert all(s.min_per_user == 20 for s in SHAPES.values())


def test_ratings_file_format(half: tuple[SynthResult, pd.DataFrame]) -> None:
    """Header, row count, id and rating text, ranges, uniqueness, order: like ml-latest."""
    result, df = half
    with open(result.path / "ratings.csv", encoding="utf-8") as fh:
        assert fh.readline() == "userId,movieId,rating,timestamp\n"
    assert len(df) == result.n_ratings == HALF.n_ratings
    assert (result.n_users, result.n_items) == (HALF.n_users, HALF.n_items)
    assert df["rating_text"].str.fullmatch(r"[0-5]\.[05]").all()  # "4.0", "3.5", never "4"
    assert set(df["rating"]) <= {x / 2 for x in range(1, 11)}
    assert (df["rating"] * 2 % 2 == 1).mean() > 0.1  # half stars are used
    assert (df["rating"] * 2 % 2 == 1)[df["timestamp"] < HALF_STAR_EPOCH].sum() == 0
    assert not df.duplicated(["userId", "movieId"]).any()
    assert sorted(df["userId"].unique()) == list(range(1, HALF.n_users + 1))
    assert df["timestamp"].between(HALF.t_start, HALF.t_end).all()
    assert df["userId"].is_monotonic_increasing
    assert (df.groupby("userId")["timestamp"].diff().dropna() > 0).all()
    movies = pd.read_csv(result.path / "movies.csv")
    assert set(df["movieId"]) <= set(movies["movieId"])


def test_whole_star_scale(whole: tuple[SynthResult, pd.DataFrame]) -> None:
    """An ml-1m-like shape uses whole stars 1-5 only, still printed as "4.0"."""
    result, df = whole
    assert len(df) == WHOLE.n_ratings
    assert set(df["rating_text"]) == {"1.0", "2.0", "3.0", "4.0", "5.0"}
    assert 3.0 < df["rating"].mean() < 4.0


def test_movies_file(half: tuple[SynthResult, pd.DataFrame]) -> None:
    """movies.csv: header, sparse increasing ids, quoted titles with years, valid genres."""
    result, _ = half
    planted = load_planted(result.path)
    with open(result.path / "movies.csv", encoding="utf-8", newline="") as fh:
        raw = fh.read()
    assert raw.startswith("movieId,title,genres\n")
    assert '"Synthetic Movie' in raw  # titles with a comma are quoted...
    rows = list(csv.reader(raw.splitlines()[1:]))  # ...and parse back to three fields
    assert len(rows) == HALF.n_items and all(len(r) == 3 for r in rows)
    ids = np.array([int(r[0]) for r in rows])
    assert (np.diff(ids) > 0).all() and ids[-1] > HALF.n_items  # increasing, with gaps
    assert (ids == planted["item_ids"]).all()
    title = re.compile(r'Synthetic (Movie|"Movie") (\d+)(, The)? \((\d{4})\)')
    matches = [title.fullmatch(r[1]) for r in rows]
    assert all(m is not None and int(m.group(2)) == i for m, i in zip(matches, ids, strict=True))
    assert any(", The" in r[1] for r in rows) and any('"' in r[1] for r in rows)
    genre_lists = [r[2].split("|") for r in rows]
    listed = [g for r in genre_lists for g in r if g != NO_GENRES]
    assert set(listed) <= set(GENRES) and len(set(listed)) == len(GENRES)
    assert all(1 <= len(g) <= 3 for g in genre_lists)
    assert 0 < sum(g == [NO_GENRES] for g in genre_lists) < 0.05 * HALF.n_items
    flags = np.array([[name in g for name in GENRES] for g in genre_lists])
    assert (flags == planted["item_genres"]).all()


def test_every_user_has_min_ratings_and_activity_is_skewed(
    half: tuple[SynthResult, pd.DataFrame],
) -> None:
    """Each user has >= 20 ratings (as planted), and a few users rate far more than most."""
    result, df = half
    counts = df.groupby("userId").size().to_numpy()
    planted = load_planted(result.path)
    assert counts.min() >= HALF.min_per_user
    assert (counts == planted["user_n_ratings"]).all()
    assert counts.max() > 4 * np.median(counts)


def test_popularity_is_skewed(half: tuple[SynthResult, pd.DataFrame]) -> None:
    """The top 10 % of items get a large share of the ratings, following planted popularity."""
    result, df = half
    planted = load_planted(result.path)
    counts = np.bincount(item_positions(planted, df["movieId"]), minlength=HALF.n_items)
    top = np.sort(counts)[::-1][: HALF.n_items // 10]
    assert top.sum() / counts.sum() > 0.35  # uniform choice would give about 0.1
    ranks = pd.Series(planted["item_popularity"]).rank().corr(pd.Series(counts).rank())
    assert ranks > 0.6


def test_planted_model_beats_popularity(half: tuple[SynthResult, pd.DataFrame]) -> None:
    """On each user's last 20 % of rows, the planted model ranks far better than popularity.

    This is the property the generator exists for: which items a user rates depends on taste,
    so a model that learns the taste beats the popularity list by a wide margin (as on real
    data), and popularity still beats chance.
    """
    result, df = half
    planted = load_planted(result.path)
    rng = np.random.default_rng(0)
    metrics = holdout_metrics(
        df,
        planted,
        {
            "planted": oracle_logits(planted),
            "popularity": "popularity",
            "random": rng.random((HALF.n_users, HALF.n_items)),
        },
    )
    (hr_o, ndcg_o), (hr_p, ndcg_p), (hr_r, ndcg_r) = (
        metrics[k] for k in ("planted", "popularity", "random")
    )
    print(f"HR@10 planted {hr_o:.3f} popularity {hr_p:.3f} random {hr_r:.3f}")
    print(f"NDCG@10 planted {ndcg_o:.3f} popularity {ndcg_p:.3f} ({ndcg_o / ndcg_p:.2f}x)")
    assert ndcg_o >= 1.3 * ndcg_p
    assert hr_o >= 1.3 * hr_p
    assert ndcg_p >= 2 * ndcg_r


def test_margin_vanishes_without_planted_taste(tmp_path: Path) -> None:
    """Control: with pref_weight=0, choices follow popularity only and the margin disappears.

    This shows the margin test above measures the planted taste, not an artefact of the split.
    """
    shape = shape_from_counts(500, 3_000, 40_000, pref_weight=0.0)
    result = synthesize(tmp_path, shape, seed=3)
    planted = load_planted(result.path)
    metrics = holdout_metrics(
        read_ratings(result.path),
        planted,
        {"planted": oracle_logits(planted), "popularity": "popularity"},
    )
    assert metrics["planted"][1] < 1.3 * metrics["popularity"][1]


def test_ratings_follow_planted_score(half: tuple[SynthResult, pd.DataFrame]) -> None:
    """Ratings correlate with mu + b_u + b_i + genre effects + taste, but are noisy."""
    result, df = half
    p = load_planted(result.path)
    u = df["userId"].to_numpy() - 1
    i = item_positions(p, df["movieId"])
    g = p["item_genre_weights"][i]
    score = (
        float(p["global_mean"])
        + p["user_bias"][u]
        + p["item_bias"][i]
        + g @ p["genre_bias"]
        + np.einsum("nd,nd->n", p["user_factors"][u], p["item_factors"][i])
        + np.einsum("ng,ng->n", p["user_genre_affinity"][u], g)
    )
    r = np.corrcoef(score, df["rating"])[0, 1]
    assert 0.5 < r < 0.95
    assert np.allclose(planted_expected_rating(p, u, i), score, atol=1e-4)


def test_selection_helper_matches_formula(half: tuple[SynthResult, pd.DataFrame]) -> None:
    """planted_selection_logits equals the documented formula on the saved arrays."""
    result, _ = half
    p = load_planted(result.path)
    users = np.array([0, 7, HALF.n_users - 1])
    expected = oracle_logits(p)[users]
    assert np.allclose(planted_selection_logits(p, users), expected, atol=1e-4)


def test_same_seed_same_bytes_any_workers(tmp_path: Path) -> None:
    """Output is a function of (shape, seed) only: not of the thread count; seeds differ."""
    names = ("ratings.csv", "movies.csv", "planted.npz")
    a = synthesize(tmp_path / "a", TINY, seed=11, workers=1).path
    b = synthesize(tmp_path / "b", TINY, seed=11, workers=2).path
    c = synthesize(tmp_path / "c", TINY, seed=12).path
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "ratings.csv").read_bytes() != (c / "ratings.csv").read_bytes()
    assert sorted(p.name for p in a.iterdir()) == sorted(names)  # no temporary files left


def test_progress_reports_rows(tmp_path: Path) -> None:
    """progress(rows_written, total) is called with increasing counts ending at the total."""
    calls: list[tuple[int, int]] = []
    synthesize(tmp_path, TINY, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (TINY.n_ratings, TINY.n_ratings)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((100, 500, 1_999), {}),  # fewer than 20 ratings per user
        ((10, 100, 1_000), {}),  # more than 60 % of the catalogue per user
        ((10, 15, 200), {}),  # fewer items than min_per_user
        ((10, 500, 300), {"min_per_user": 0}),
        ((10, 500, 300), {"last_day": "1990-01-01"}),
    ],
)
def test_impossible_shapes_are_refused(args: tuple[int, int, int], kwargs: dict) -> None:
    """Counts that cannot be generated raise a RecsysError naming the problem."""
    with pytest.raises(RecsysError, match="shape"):
        shape_from_counts(*args, **kwargs)


def test_unknown_shape_name(tmp_path: Path) -> None:
    """A misspelt shape name is a user error, not a KeyError."""
    with pytest.raises(RecsysError, match="ml-latest-small"):
        synthesize(tmp_path, "ml-25")


def test_shape_is_frozen_with_movielens_defaults() -> None:
    """Custom shapes default to half stars and 20 ratings per user, and cannot be mutated."""
    shape = shape_from_counts(100, 500, 5_000)
    assert isinstance(shape, Shape) and shape.half_stars and shape.min_per_user == 20
    with pytest.raises(AttributeError):
        shape.n_users = 5  # type: ignore[misc]
