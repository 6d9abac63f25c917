"""Split rules on hand-made frames: fractions, time order, leave-last, given."""

from __future__ import annotations

import pytest

from recsys import schema as S
from recsys.config import PrepareConfig
from recsys.errors import RecsysError
from recsys.prepare.split import ORIGIN, assign_split, check_split, parse_gap


def frame(spark, rows):
    return spark.createDataFrame(rows, f"{S.USER_IDX} int, {S.ITEM_IDX} int, {S.TS} long")


def splits(df):
    return {
        (r[S.USER_IDX], r[S.ITEM_IDX]): r[S.SPLIT]
        for r in df.select(S.USER_IDX, S.ITEM_IDX, S.SPLIT).collect()
    }


def test_random_split_fractions_and_determinism(spark):
    rows = [(u, i, u * 100 + i) for u in range(50) for i in range(40)]
    cfg = PrepareConfig(split="random", test_fraction=0.2, val_fraction=0.25, seed=7)
    df = frame(spark, rows)
    first = splits(assign_split(df, cfg))
    counts = {s: list(first.values()).count(s) for s in S.SPLITS}
    assert counts["test"] == pytest.approx(400, abs=60)  # 20% of 2000
    assert counts["val"] == pytest.approx(400, abs=60)  # 25% of the remaining 1600
    # Same seed, different partitioning: the same assignment.
    assert splits(assign_split(df.repartition(7), cfg)) == first
    other = splits(assign_split(df, PrepareConfig(split="random", seed=8)))
    assert other != first


def test_temporal_split_train_precedes_test(spark):
    rows = [(u, i, (u * 37 + i * 11) % 1000) for u in range(20) for i in range(50)]
    cfg = PrepareConfig(split="temporal", test_fraction=0.2, val_fraction=0.1)
    out = assign_split(frame(spark, rows), cfg).collect()
    by = {s: [r[S.TS] for r in out if r[S.SPLIT] == s] for s in S.SPLITS}
    assert max(by["train"]) < min(by["val"]) <= max(by["val"]) < min(by["test"])
    assert len(by["test"]) == pytest.approx(200, abs=20)


def test_leave_last_by_time_then_item(spark):
    rows = [
        (0, 0, 10),
        (0, 1, 30),
        (0, 2, 20),
        (0, 3, 30),  # tie at 30: higher item is "later"
        (1, 0, 5),
        (1, 1, 6),  # two rows: one to test, none to val
        (2, 0, 1),  # one row: stays in train
    ]
    cfg = PrepareConfig(split="leave-last", leave_last=1, leave_last_val=1)
    assert splits(assign_split(frame(spark, rows), cfg)) == {
        (0, 0): "train",
        (0, 2): "train",
        (0, 1): "val",
        (0, 3): "test",
        (1, 0): "train",
        (1, 1): "test",
        (2, 0): "train",
    }


def test_given_split_keeps_origin(spark):
    df = spark.createDataFrame(
        [(0, 0, 1, "train"), (0, 1, 2, "test")],
        f"{S.USER_IDX} int, {S.ITEM_IDX} int, {S.TS} long, {ORIGIN} string",
    )
    out = splits(assign_split(df, PrepareConfig(split="given", val_fraction=0.0)))
    assert out == {(0, 0): "train", (0, 1): "test"}


@pytest.mark.parametrize(
    ("cfg", "test_input", "has_ts", "needle"),
    [
        (PrepareConfig(split="sideways"), False, True, "--split must be one of"),
        (PrepareConfig(split="given"), False, True, "needs the test rows in --test-input"),
        (PrepareConfig(split="random"), True, True, "only used with --split given"),
        (PrepareConfig(split="temporal"), False, False, "has no timestamp column"),
        (PrepareConfig(split="return"), False, False, "--split return orders rows by time"),
        (PrepareConfig(split="return", gap="soon"), False, True, "--gap must be a positive"),
        (PrepareConfig(split="return", gap="-1d"), False, True, "got .-1d."),
        (PrepareConfig(split="return", gap="infd"), False, True, "--gap must be a positive"),
        (PrepareConfig(test_fraction=1.0), False, True, "--test-fraction must be in"),
    ],
)
def test_bad_split_options(cfg, test_input, has_ts, needle):
    with pytest.raises(RecsysError, match=needle):
        check_split(cfg, test_input, has_ts)


def test_stratified_split_keeps_each_items_share(spark):
    # Item 0: 4 rows -> 3 train, 1 test; item 1: 8 rows -> 6 / 2; item 2: one row -> test
    # (rank 1 of 1 is above 0.75, as in the Microsoft Recommenders splitter).
    rows = [(u, 0, u) for u in range(4)] + [(u, 1, u) for u in range(8)] + [(9, 2, 0)]
    cfg = PrepareConfig(split="stratified", test_fraction=0.25, val_fraction=0.0, seed=42)
    got = splits(assign_split(frame(spark, rows), cfg))
    per_item = {i: sorted(s for (_, item), s in got.items() if item == i) for i in range(3)}
    assert per_item == {
        0: ["test", "train", "train", "train"],
        1: ["test"] * 2 + ["train"] * 6,
        2: ["test"],
    }
    # Validation comes out of each item's train share: 8 rows -> 2 test, 6 * 0.5 = 3 val.
    cfg = PrepareConfig(split="stratified", test_fraction=0.25, val_fraction=0.5, seed=42)
    item1 = [s for (_, i), s in splits(assign_split(frame(spark, rows), cfg)).items() if i == 1]
    assert sorted(item1) == ["test"] * 2 + ["train"] * 3 + ["val"] * 3
    # Another seed picks other rows, in the same proportions.
    other = splits(assign_split(frame(spark, rows), PrepareConfig(split="stratified", seed=1)))
    assert other != got


def test_stratified_by_user(spark):
    rows = [(u, i, i) for u in range(3) for i in range(10)]
    cfg = PrepareConfig(split="stratified", stratify_by="user", test_fraction=0.2, val_fraction=0)
    got = splits(assign_split(frame(spark, rows), cfg))
    for u in range(3):
        assert sum(s == "test" for (user, _), s in got.items() if user == u) == 2
    with pytest.raises(RecsysError, match="prepare.stratify_by must be item or user"):
        check_split(PrepareConfig(split="stratified", stratify_by="genre"), False, True)


DAY = 86_400


def test_return_split_by_hand(spark):
    rows = [
        # u0: a session, a day's pause, a session, two days' pause, the return visit of 3 rows
        (0, 0, 0), (0, 1, 60),
        (0, 2, DAY + 60), (0, 3, DAY + 120),  # pause of exactly a day before item 2: a return
        (0, 4, 3 * DAY + 200), (0, 6, 3 * DAY + 200), (0, 5, 3 * DAY + 300),
        # u1: rows minutes apart: no pause, every row stays in train
        (1, 0, 10), (1, 1, 70), (1, 2, 130),
        # u2: a pause after its first row: test and val but no train row would remain -> train
        (2, 0, 0), (2, 1, 2 * DAY),
        # u3: the last pause leaves one train row; the pause of 23h59m is no pause
        (3, 0, 0), (3, 1, 10), (3, 2, 2 * DAY), (3, 3, 3 * DAY - 60),
    ]  # fmt: skip
    got = splits(assign_split(frame(spark, rows), PrepareConfig(split="return", gap="1d")))
    assert got == {
        # u0's last pause is before item 4 (3 DAY + 200); items 4 and 6 share a second, the
        # lower item is the earlier row (leave-last's order), so 4 is test, 3 val, 6 and 5 after
        (0, 0): "train", (0, 1): "train", (0, 2): "train", (0, 3): "val",
        (0, 4): "test", (0, 6): "after", (0, 5): "after",
        (1, 0): "train", (1, 1): "train", (1, 2): "train",
        (2, 0): "train", (2, 1): "train",
        (3, 0): "train", (3, 1): "val", (3, 2): "test", (3, 3): "after",
    }  # fmt: skip
    # a longer gap: u0's day-long pause no longer counts, its two-day pause still does
    longer = splits(assign_split(frame(spark, rows), PrepareConfig(split="return", gap="36h")))
    assert {k: v for k, v in longer.items() if k[0] == 0} == {
        k: v for k, v in got.items() if k[0] == 0
    }
    assert longer[(3, 2)] == "test"


@pytest.mark.parametrize(
    ("text", "seconds"), [("1d", DAY), ("12h", 43_200), ("30m", 1_800), ("90s", 90), ("600", 600)]
)
def test_gap_units(text, seconds):
    assert parse_gap(text) == seconds
