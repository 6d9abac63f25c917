"""benchmarks/warm_bench.py's nights of a real log: the cut the refit figures rest on."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import pandas as pd

from recsys.data.formats import locate

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "warm_bench.py"
spec = importlib.util.spec_from_file_location("warm_bench", BENCH)
warm_bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(warm_bench)


def args(**overrides) -> argparse.Namespace:
    settings = {"later": "user", "drop_last": 0, "new": 0.4, "future": 0.1, "seed": 0, "gap": 150}
    return argparse.Namespace(**{**settings, **overrides})


def ml100k(tmp_path: Path) -> Path:
    # Three users, four rows each at their own times; user 3 arrives late (a new user).
    rows = [(u, 10 * u + k, 1 + k, 100 * k + u + (1_000 if u == 3 else 0)) for u in (1, 2, 3)
            for k in range(4)]  # fmt: skip
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    (folder / "u.item").write_text("".join(f"{i}|Item {i}|\n" for _, i, _, _ in rows))
    return folder


def pairs(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame.userId, frame.movieId, strict=True))


def test_later_user_is_every_users_next_row_after_night_2(tmp_path):
    log = warm_bench.read_log(locate(ml100k(tmp_path)))
    assert log.timestamp.is_monotonic_increasing and len(log) == 12
    night1, night2, later = warm_bench.make_nights(log, args(), min_new=0)
    assert sorted(later.movieId) == [13, 23, 33]  # each user's newest row
    assert pairs(night1) < pairs(night2)
    assert not pairs(later) & pairs(night2) and len(night2) + len(later) == 12
    assert 3 not in set(night1.userId) and 3 in set(night2.userId)  # new on night 2

    # --drop-last 1 asks for the row before: another split of the same log.
    _, night2, later = warm_bench.make_nights(log, args(drop_last=1), min_new=0)
    assert sorted(later.movieId) == [12, 22, 32] and len(night2) == 6


def test_later_session_is_every_returning_users_last_sitting(tmp_path):
    log = warm_bench.read_log(locate(ml100k(tmp_path)))
    log.loc[log.userId == 2, "timestamp"] += [0, 100, 400, 410]  # user 2 comes back at 402 + 2
    _, night2, later = warm_bench.make_nights(log, args(later="session"), min_new=0)
    assert sorted(later.movieId) == [22, 23]  # users 1 and 3 never paused for > 150 s
    assert len(night2) == 10 and not pairs(later) & pairs(night2)


def test_later_time_is_the_logs_last_share(tmp_path):
    log = warm_bench.read_log(locate(ml100k(tmp_path)))
    night1, night2, later = warm_bench.make_nights(log, args(later="time", future=0.25), 0)
    assert later.timestamp.min() >= night2.timestamp.max() and len(later) == 3
    assert len(night1) < len(night2)


def test_nights_are_written_in_the_source_format(tmp_path):
    source = locate(ml100k(tmp_path))
    log = warm_bench.read_log(source)
    dest = warm_bench.write_log(log.head(5), source, tmp_path / "night")
    again = warm_bench.read_log(locate(dest))
    pd.testing.assert_frame_equal(again, log.head(5))
    assert (dest / "u.item").read_text() == (source.items).read_text()
