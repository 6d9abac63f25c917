"""Generic CSV logs read as RFC 4180 says, with the MovieLens rule for rows of the wrong length.

Hand-written files; each expectation is read off the file by eye.
"""

from __future__ import annotations

import pytest

from recsys import schema as S
from recsys.config import SourceConfig
from recsys.data.formats import locate
from recsys.prepare import parse, read

HEADER = "member,sku,stars,when\n"
SOURCE = SourceConfig(user_col="member", item_col="sku", rating_col="stars", ts_col="when")


def rows(spark, path, multiline=False):
    """Every row of the log with its reason (None: valid), in file order of the user ids."""
    src = SourceConfig(**{**SOURCE.__dict__, "csv_multiline": multiline})
    raw = read.read_table(spark, locate(str(path), None), src)
    checked = parse.validate(
        raw.rows, rating_min=float("-inf"), rating_max=float("inf"), numeric_ids=False
    )
    out = checked.select(S.USER_ID, S.ITEM_ID, S.RATING, S.LINE, S.REASON).collect()
    return sorted((r.asDict() for r in out), key=lambda r: (r[S.LINE] or "", r[S.USER_ID] or ""))


def test_quoted_fields_doubled_quotes_and_quoted_separators(spark, write):
    path = write(
        "q/log.csv",
        HEADER
        + 'u1,"plain",4,100\n'
        + 'u2,"say ""hi"", then go",5,101\n'  # a doubled quote is one quote
        + '"u,3",i3,3,102\n'  # a quoted separator is text
        + 'u4,"",2,103\n',  # an empty quoted field is an empty id
    )
    got = {r[S.USER_ID]: r for r in rows(spark, path)}
    assert got["u1"][S.ITEM_ID] == "plain" and got["u1"][S.REASON] is None
    assert got["u2"][S.ITEM_ID] == 'say "hi", then go' and got["u2"][S.REASON] is None
    assert got["u,3"][S.ITEM_ID] == "i3" and got["u,3"][S.RATING] == 3.0
    assert got["u4"][S.REASON] == S.REASON_ITEM


def test_too_many_or_too_few_fields_go_to_the_quarantine_as_wrong_field_count(spark, write):
    path = write(
        "n/log.csv",
        HEADER + "u1,i1,4,100\n" + "u2,i2,5,101,surplus\n" + "u3,i3\n" + 'u4,"a,b",3,102\n',
    )
    got = rows(spark, path)
    reasons = {r[S.LINE]: r[S.REASON] for r in got if r[S.REASON]}
    # The raw text of each bad row is kept, as the MovieLens formats keep theirs.
    assert reasons == {
        "u2,i2,5,101,surplus": S.REASON_FIELDS,
        "u3,i3": S.REASON_FIELDS,
    }
    assert sorted(r[S.USER_ID] for r in got if r[S.REASON] is None) == ["u1", "u4"]


def test_quoted_line_breaks_with_multiline_and_without(spark, write):
    path = write(
        "m/log.csv",
        HEADER + 'u1,"two\nlines",4,100\n' + "u2,i2,5,101\n",
    )
    got = rows(spark, path, multiline=True)
    assert [(r[S.USER_ID], r[S.ITEM_ID], r[S.REASON]) for r in got if r[S.USER_ID] == "u1"] == [
        ("u1", "two\nlines", None)
    ]
    # Without source.csv_multiline the broken row is never read as two rows: both halves are
    # quarantined, the good row stays.
    got = rows(spark, path)
    assert [r[S.USER_ID] for r in got if r[S.REASON] is None] == ["u2"]
    bad = [r for r in got if r[S.REASON] is not None]
    assert len(bad) == 2 and {r[S.REASON] for r in bad} == {S.REASON_FIELDS}


@pytest.mark.parametrize("sep", [";", "\t"])
def test_other_separators_quote_the_same_way(spark, write, sep):
    path = write(
        "s/log.csv",
        sep.join(["member", "sku", "stars", "when"]) + "\n"
        + sep.join(["u1", f'"x{sep}y ""z"""', "4", "100"]) + "\n",
    )  # fmt: skip
    src = SourceConfig(**{**SOURCE.__dict__, "sep": sep})
    raw = read.read_table(spark, locate(str(path), "csv"), src)
    (row,) = raw.rows.collect()
    assert row[parse.RAW_ITEM] == f'x{sep}y "z"' and row[parse.N_FIELDS] == parse.EXPECTED_FIELDS


def test_prepare_counts_and_keeps_the_rows_of_the_wrong_length(spark, tmp_path, write):
    import pyarrow.parquet as pq

    from recsys.config import load_config
    from recsys.prepare.job import run_prepare

    good = [f"u{u},i{i},{1 + (u + i) % 5},{100 + 10 * u + i}" for u in range(6) for i in range(4)]
    path = write("p/log.csv", HEADER + "\n".join([*good, "u9,i9,5,900,extra", "u8"]) + "\n")
    cfg = load_config(
        root=str(tmp_path / "var"),
        source={**{k: getattr(SOURCE, k) for k in ("user_col", "item_col", "rating_col")},
                "ts_col": "when", "input": str(path)},
        prepare={"split": "random", "max_reject_fraction": 0.5},
        spark={"master": "local[2]", "shuffle_partitions": 2},
    )  # fmt: skip
    result = run_prepare(cfg, "2026-02-01")
    m = result.manifest
    assert m.rows_read == 26 and m.rows_valid == 24
    assert m.quarantine.by_reason == {S.REASON_FIELDS: 2}
    q = pq.read_table(result.path / "quarantine").to_pandas()
    assert sorted(q[S.LINE]) == ["u8", "u9,i9,5,900,extra"]
