"""The prepare job end to end on small hand-made MovieLens files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from recsys import schema as S
from recsys import storage
from recsys.cli.output import print_prepare_summary
from recsys.config import load_config
from recsys.errors import RecsysError
from recsys.integrity import check_prepared
from recsys.prepare.job import run_prepare

HEADER = "userId,movieId,rating,timestamp"
MOVIES = (
    "movieId,title,genres\n"
    '10,"American President, The (1995)",Comedy|Drama|Romance\n'
    "20,Heat (1995),Action|Crime|Thriller\n"
    "30,Toy Story (1995),Adventure|Animation\n"
    "40,Nothing (2001),(no genres listed)\n"
)


def good_rows() -> list[str]:
    """4 users x 4 items; user u rates items in time order; user 4 rates only 2 items."""
    rows = []
    t = 1_000_000
    for user in (1, 2, 3):
        for k, item in enumerate((10, 20, 30, 40)):
            t += 10
            rows.append(f"{user},{item},{(user + k) % 5 + 1}.0,{t}")
    rows += ["4,10,3.5,2000000", "4,30,4.5,2000010"]
    return rows


def ml_folder(write, rows: list[str], movies: str | bytes = MOVIES, name: str = "ml"):
    write(f"{name}/movies.csv", movies)
    return write(f"{name}/ratings.csv", "\n".join([HEADER, *rows]) + "\n").parent


def prepare(tmp_path, input_path, **prepare_opts):
    cfg = load_config(
        root=str(tmp_path / "var"),
        source={"input": str(input_path)},
        prepare=prepare_opts,
        spark={"master": "local[2]", "driver_memory": "2g", "shuffle_partitions": 2},
    )
    return run_prepare(cfg, "2026-01-02")


def read_split(result, name: str) -> pd.DataFrame:
    return pq.read_table(result.path / "ratings" / f"split={name}").to_pandas()


def test_layout_manifest_and_pointer(spark, tmp_path, write):
    result = prepare(tmp_path, ml_folder(write, good_rows()))
    m = result.manifest
    assert result.path.name.startswith("run=") and result.path.parent.name == "ds=2026-01-02"
    assert (result.path / "manifest.json").is_file()
    assert storage.latest(str(tmp_path / "var"), "prepared") == result.path
    assert m.rows_read == 14 and m.quarantine.total == 0
    assert (m.n_users, m.n_items) == (4, 4)
    # leave-last (1 test, 1 val): users 1-3 give one row to each; user 4 (2 rows) one to test.
    assert m.counts == {"train": 7, "val": 3, "test": 4}
    assert m.rating_scale == [0.5, 5.0]
    train = read_split(result, "train")
    assert m.global_mean == pytest.approx(train[S.RATING].mean())
    assert dict(train.dtypes) == {
        S.USER_IDX: "int32",
        S.ITEM_IDX: "int32",
        S.RATING: "float32",
        S.TS: "int64",
    }
    # No staging debris after a clean run.
    assert not [p for p in result.path.parent.iterdir() if p.name.startswith("_staging")]


def test_leave_last_holds_out_the_latest_rows(spark, tmp_path, write):
    result = prepare(tmp_path, ml_folder(write, good_rows()))
    users = pq.read_table(result.path / "users").to_pandas()
    items = pq.read_table(result.path / "items").to_pandas()
    test = read_split(result, "test").merge(users, on=S.USER_IDX).merge(items, on=S.ITEM_IDX)
    val = read_split(result, "val").merge(users, on=S.USER_IDX).merge(items, on=S.ITEM_IDX)
    assert dict(zip(test[S.USER_ID], test[S.ITEM_ID], strict=True)) == {1: 40, 2: 40, 3: 40, 4: 30}
    assert dict(zip(val[S.USER_ID], val[S.ITEM_ID], strict=True)) == {1: 30, 2: 30, 3: 30}


def test_return_split_counts_what_it_kept_aside_in_the_manifest(spark, tmp_path, write, capsys):
    rows = good_rows()  # users 1-3: rows 10 s apart; user 4: two rows 10 s apart
    rows += ["1,50,4.0,1090000", "1,60,3.0,1090010", "5,10,2.0,3000000"]  # user 1 returns
    movies = MOVIES + "50,Fifty (1996),Drama\n60,Sixty (1996),Drama\n"
    result = prepare(tmp_path, ml_folder(write, rows, movies), split="return", gap="1d")
    m = result.manifest
    # user 1 came back after ~25 h: item 50 is the test row, item 40 validation, 10-30 train
    # and item 60 (the same visit) after; users 2-5 never paused a day: all their rows train
    assert m.counts == {"train": 3 + 4 + 4 + 2 + 1, "val": 1, "test": 1, "after": 1}
    assert m.split["kind"] == "return" and m.split["gap"] == "1d"
    assert {k: m.split[k] for k in ("returning_users", "users_without_return")} == {
        "returning_users": 1,
        "users_without_return": 4,
    }
    assert m.split["rows_of_users_without_return"] == 11 and m.split["after_test_rows"] == 1
    assert m.rows == 17 == m.rows_read
    check_prepared(result.path, m)  # the after rows are files of the run like any split
    items = pq.read_table(result.path / "items").to_pandas()
    test = read_split(result, "test").merge(items, on=S.ITEM_IDX)
    assert test[S.ITEM_ID].tolist() == [50]
    print_prepare_summary(m, result.path)
    shown = capsys.readouterr().out
    assert "ratings: after" in shown and "users without return" in shown


def test_items_and_users_tables(spark, tmp_path, write):
    result = prepare(tmp_path, ml_folder(write, good_rows()))
    items = pq.read_table(result.path / "items").to_pandas()
    assert items[S.ITEM_ID].tolist() == [10, 20, 30, 40]
    assert items[S.ITEM_IDX].tolist() == [0, 1, 2, 3]
    assert items[S.TITLE].tolist()[0] == "American President, The (1995)"
    assert list(items[S.GENRES][1]) == ["Action", "Crime", "Thriller"]
    assert list(items[S.GENRES][3]) == []
    assert items[S.N_RATINGS].tolist() == [4, 3, 4, 3]
    # item 10: users 1,2,3 rate (u+0)%5+1 -> 2,3,4 and user 4 rates 3.5
    assert items[S.MEAN_RATING][0] == pytest.approx((2 + 3 + 4 + 3.5) / 4)
    users = pq.read_table(result.path / "users").to_pandas()
    assert users[S.USER_ID].tolist() == [1, 2, 3, 4]
    assert users[S.N_RATINGS].tolist() == [4, 4, 4, 2]


def test_same_input_gives_identical_indices(spark, tmp_path, write):
    folder = ml_folder(write, good_rows())
    first = prepare(tmp_path, folder)
    second = prepare(tmp_path, folder)
    assert first.path != second.path  # a re-run of the same ds is a new run
    for table in ("users", "items"):
        a = (first.path / table / "part-00000.parquet").read_bytes()
        b = (second.path / table / "part-00000.parquet").read_bytes()
        assert a == b
    assert first.manifest.input_fingerprint == second.manifest.input_fingerprint


def test_duplicates_keep_latest_and_are_counted(spark, tmp_path, write):
    rows = [*good_rows(), "1,10,5.0,999", "1,10,0.5,3000000"]  # older and newer copies of (1,10)
    result = prepare(tmp_path, ml_folder(write, rows), split="random", test_fraction=0.0)
    assert result.manifest.duplicates_removed == 2
    all_rows = pd.concat([read_split(result, s) for s in S.SPLITS])
    kept = all_rows[(all_rows[S.USER_IDX] == 0) & (all_rows[S.ITEM_IDX] == 0)]
    assert kept[S.RATING].tolist() == [0.5] and kept[S.TS].tolist() == [3_000_000]


def test_duplicates_keep_earliest_when_configured(spark, tmp_path, write):
    rows = [*good_rows(), "1,10,5.0,999"]
    result = prepare(tmp_path, ml_folder(write, rows), split="random", dedupe="earliest")
    all_rows = pd.concat([read_split(result, s) for s in S.SPLITS])
    kept = all_rows[(all_rows[S.USER_IDX] == 0) & (all_rows[S.ITEM_IDX] == 0)]
    assert kept[S.TS].tolist() == [999]


def test_k_core_removes_sparse_users_and_items(spark, tmp_path, write):
    result = prepare(tmp_path, ml_folder(write, good_rows()), min_user_ratings=3)
    assert result.manifest.n_users == 3  # user 4 had 2 ratings
    assert result.manifest.kcore_removed == 2
    result = prepare(tmp_path, ml_folder(write, good_rows()), min_item_ratings=4)
    assert result.manifest.n_items == 2  # items 20 and 40 had 3


def corrupted_copy(write):
    """A damaged MovieLens copy: every kind of bad row named in the issue, once or more."""
    good = good_rows()
    bad = [
        ("1,2", S.REASON_FIELDS),  # truncated line
        ("3,30,4.0,10", None),  # fine (kept), placed among the bad ones
        ("2,10,abc,1000001", S.REASON_RATING),  # text in the rating column
        ("2,20,7,1000002", S.REASON_RANGE),
        ("3,20,-1,1000003", S.REASON_RANGE),
        ("", S.REASON_BLANK),
        ("   ", S.REASON_BLANK),
        (HEADER, S.REASON_HEADER),  # duplicated header in the middle
        ("x1,10,3.0,1000004", S.REASON_USER),
        ("1,,3.0,1000005", S.REASON_ITEM),
        ("1,10,3.0,yesterday", S.REASON_TS),
        ("1,10,3.0,1000006,extra", S.REASON_FIELDS),
    ]
    rows = good[:5] + [line for line, _ in bad] + good[5:]
    movies = MOVIES.encode() + "50,Am\xe9lie (2001),Comedy|Romance\n".encode("latin-1")
    expected = sorted((line, reason) for line, reason in bad if reason)
    return ml_folder(write, rows, movies), expected


def test_corrupted_copy_quarantines_exactly_the_bad_rows(spark, tmp_path, write):
    folder, expected = corrupted_copy(write)
    result = prepare(tmp_path, folder, max_reject_fraction=0.5)
    q = pq.read_table(result.path / "quarantine").to_pandas()
    assert sorted(zip(q[S.LINE], q[S.REASON], strict=True)) == expected
    counts = result.manifest.quarantine.by_reason
    assert counts == {
        S.REASON_FIELDS: 2,
        S.REASON_RATING: 1,
        S.REASON_RANGE: 2,
        S.REASON_BLANK: 2,
        S.REASON_HEADER: 1,
        S.REASON_USER: 1,
        S.REASON_ITEM: 1,
        S.REASON_TS: 1,
    }
    m = result.manifest
    assert m.rows_read == len(good_rows()) + 1 + len(expected)
    assert m.rows_valid == len(good_rows()) + 1
    assert m.titles_redecoded_latin1 == 1
    items = pq.read_table(result.path / "items").to_pandas()
    assert "Amélie (2001)" not in items[S.TITLE].tolist()  # item 50 has no ratings
    assert q[S.SOURCE_FILE].str.endswith("ratings.csv").all()


def test_non_utf8_title_is_kept(spark, tmp_path, write):
    movies = MOVIES.encode().replace(b"Heat (1995)", "Hé (1995)".encode("latin-1"))
    result = prepare(tmp_path, ml_folder(write, good_rows(), movies))
    items = pq.read_table(result.path / "items").to_pandas()
    assert items[S.TITLE][1] == "Hé (1995)"


def test_too_many_rejects_fail_with_counts_and_keep_quarantine(spark, tmp_path, write):
    folder, _ = corrupted_copy(write)
    with pytest.raises(RecsysError) as err:
        prepare(tmp_path, folder)  # default threshold 1%
    message = str(err.value)
    assert "rows (" in message and "max_reject_fraction=1.00%" in message
    assert "bad_rating=1" in message and "quarantine" in message
    assert not (tmp_path / "var" / "prepared" / storage.LATEST).exists()
    # The quarantine named in the message is kept aside; the staging folder goes with the step.
    kept = message.rsplit("see the quarantine in ", 1)[1]
    assert "_rejected-run=" in kept and pq.read_table(kept).num_rows >= 1
    storage.discard_staging()  # what the command line does when a step fails
    ds_dir = Path(kept).parent.parent
    assert not [p.name for p in ds_dir.iterdir() if p.name.startswith("_staging")]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("", "is empty"),
        ("user,item,rating,ts\n1,2,3,4\n", "not the ml-csv header"),
        (HEADER + "\n", "has no rating rows"),
    ],
)
def test_bad_files_are_one_sentence_errors(spark, tmp_path, write, content, needle):
    write("bad/movies.csv", MOVIES)
    path = write("bad/ratings.csv", content)
    with pytest.raises(RecsysError, match=needle):
        prepare(tmp_path, path.parent)


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(RecsysError, match="does not exist"):
        prepare(tmp_path, tmp_path / "nowhere")


def test_ml100k_and_ml1m_formats(spark, tmp_path, write):
    write("k/u.data", "1\t10\t3\t881250949\n1\t20\t4\t881250950\n2\t10\t5\t881250951\n")
    write(
        "k/u.item",
        b"10|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
        b"20|Caf\xe9 (1995)|01-Jan-1995||http://x|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n",
    )
    result = prepare(tmp_path, tmp_path / "k", split="random")
    assert result.manifest.format == "ml-100k" and result.manifest.rating_scale == [1, 5]
    items = pq.read_table(result.path / "items").to_pandas()
    assert items[S.TITLE].tolist() == ["Toy Story (1995)", "Café (1995)"]
    assert list(items[S.GENRES][0]) == ["Animation", "Children's", "Comedy"]
    write("m/ratings.dat", "1::10::5::978300760\n1::20::0.5::978300761\n")
    write("m/movies.dat", b"10::Toy Story (1995)::Animation|Comedy\n20::Heat (1995)::Action\n")
    # A different input into the same root: the drift guard would refuse it (3 rows -> 1).
    result = prepare(tmp_path, tmp_path / "m", split="random", max_reject_fraction=0.9, min_share=0)
    assert result.manifest.format == "ml-1m"
    assert result.manifest.quarantine.by_reason == {S.REASON_RANGE: 1}  # 0.5 is not 1-5


def test_given_split_keeps_the_files(spark, tmp_path, write):
    write("k/u.item", "")
    base = write("k/u1.base", "1\t10\t3\t100\n1\t20\t4\t101\n2\t10\t5\t102\n2\t30\t1\t103\n")
    test = write("k/u1.test", "1\t30\t2\t104\n2\t20\t4\t105\n")
    cfg = load_config(
        root=str(tmp_path / "var"),
        source={"input": str(base), "test_input": str(test)},
        prepare={"split": "given", "val_fraction": 0.0},
        spark={"master": "local[2]"},
    )
    result = run_prepare(cfg, "2026-01-02")
    assert result.manifest.counts == {"train": 4, "val": 0, "test": 2}
    assert result.manifest.n_items == 3


def test_generic_csv_with_string_ids_and_implicit_events(spark, tmp_path, write):
    path = write(
        "log/events.csv",
        "member,sku,when\nalice,A-1,2024-05-01 10:00:00\nbob,A-1,1714557600\n"
        "alice,B-2,2024-05-02T10:00:00\nbob,,1714557601\ncarol,B-2,not-a-time\n",
    )
    cfg = load_config(
        root=str(tmp_path / "var"),
        source={"input": str(path), "user_col": "member", "item_col": "sku", "ts_col": "when"},
        prepare={"split": "random", "max_reject_fraction": 0.5},
        spark={"master": "local[2]"},
    )
    result = run_prepare(cfg, "2026-01-02")
    m = result.manifest
    assert m.implicit is True and m.format == "csv"
    assert (m.user_id_type, m.item_id_type) == ("string", "string")
    assert m.quarantine.by_reason == {S.REASON_ITEM: 1, S.REASON_TS: 1}
    users = pq.read_table(result.path / "users").to_pandas()
    assert users[S.USER_ID].tolist() == ["alice", "bob"]
    rows = pd.concat([read_split(result, s) for s in S.SPLITS])
    assert set(rows[S.RATING]) == {1.0}
    assert sorted(rows[S.TS]) == [1714557600, 1714557600, 1714644000]


def test_generic_parquet_with_numeric_ids(spark, tmp_path):
    import pyarrow as pa

    (tmp_path / "pq").mkdir()
    pq.write_table(
        pa.table(
            {
                "user_id": [5, 5, 7],
                "item_id": [100, 200, 100],
                "rating": [1.0, 2.0, 3.0],
                "timestamp": [10, 11, 12],
            }
        ),
        tmp_path / "pq" / "part-0.parquet",
    )
    result = prepare(tmp_path, tmp_path / "pq", split="random")
    assert result.manifest.user_id_type == "int64" and result.manifest.format == "parquet"
    assert json.loads((result.path / "manifest.json").read_text())["n_items"] == 2


def test_generic_csv_missing_column_is_named(spark, tmp_path, write):
    path = write("log/events.csv", "member,sku\nalice,A\n")
    cfg = load_config(
        root=str(tmp_path / "var"),
        source={"input": str(path)},
        spark={"master": "local[2]"},
    )
    with pytest.raises(RecsysError, match="no column 'user_id' \\(--user-col\\)"):
        run_prepare(cfg, "2026-01-02")


def test_an_input_that_shrank_by_half_is_refused_with_both_figures(spark, tmp_path, write):
    rows = "".join(f"{u},{i},4,{100 + u * 10 + i}\n" for u in range(1, 11) for i in range(1, 5))
    write("full/ratings.csv", "userId,movieId,rating,timestamp\n" + rows)
    first = prepare(tmp_path, tmp_path / "full", split="random")
    half = "".join(ln + "\n" for ln in rows.splitlines() if int(ln.split(",")[0]) <= 4)
    write("half/ratings.csv", "userId,movieId,rating,timestamp\n" + half)
    with pytest.raises(RecsysError) as refused:
        prepare(tmp_path, tmp_path / "half", split="random")
    message = str(refused.value)
    assert "has 16 rows after cleaning, below prepare.min_share=50% of the 40" in message
    assert str(first.path) in message and "--min-share 0" in message
    assert storage.latest(str(tmp_path / "var"), "prepared") == first.path  # nothing committed
    assert (
        prepare(tmp_path, tmp_path / "half", split="random", min_share=0.3).manifest.n_users == 4
    )  # 16 >= 30% of 40: a shrink the user allowed


def test_the_drift_guard_refuses_a_previous_run_of_a_newer_format(tmp_path):
    """A prepared run written by a newer recsys is not 'nothing to compare with'."""
    from recsys import storage
    from recsys.manifests import ManifestError
    from recsys.prepare.job import check_drift

    paths = storage.new_run(str(tmp_path), "prepared", "2026-01-01", "newer")
    storage.commit(paths, {"format_version": 99, "ds": "2026-01-01", "run": "newer"})
    with pytest.raises(ManifestError, match="format version 99, newer than"):
        check_drift(str(tmp_path), tmp_path / "input.csv", 0.5, rows=10, users=2, items=2)
    # A manifest without counts is damaged (every prepared manifest has them): the guard is not
    # skipped silently, the step refuses in one sentence.
    paths = storage.new_run(str(tmp_path), "prepared", "2026-01-02", "bare")
    storage.commit(paths, {"ds": "2026-01-02", "run": "bare"})
    with pytest.raises(ManifestError, match="has no 'n_users': it is not a complete prepared"):
        check_drift(str(tmp_path), tmp_path / "input.csv", 0.5, rows=10, users=2, items=2)
