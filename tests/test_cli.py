"""The `recsys` command: errors a user can cause end in one sentence and exit status 2."""

from __future__ import annotations

import pytest

from recsys.cli import main


def test_missing_input_is_one_sentence(tmp_path, capsys):
    code = main(["prepare", "--input", str(tmp_path / "nope"), "--root", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == f"recsys prepare: error: input {tmp_path / 'nope'} does not exist"


def test_bad_option_type_is_one_sentence(tmp_path, capsys):
    code = main(["prepare", "--input", str(tmp_path), "--set", "spark.shuffle_partitions=lots"])
    assert code == 2
    assert "spark.shuffle_partitions expects int, got 'lots'" in capsys.readouterr().err


def test_bad_ds_is_one_sentence(tmp_path, write, capsys):
    write("ml/ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,1\n")
    code = main(["prepare", "--input", str(tmp_path / "ml"), "--ds", "yesterday"])
    assert code == 2
    assert "--ds must be a date as YYYY-MM-DD, got 'yesterday'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["prepare", "--input", "x", "--split", "sideways"],
        ["prepare", "--input", "x", "--test-fraction", "1.5"],
        ["prepare"],
    ],
)
def test_argparse_rejects_bad_flags(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_prepare_prints_summary(spark, tmp_path, write, capsys):
    rows = "\n".join(
        f"{u},{i},{(u + i) % 5 + 1}.0,{100 * u + i}" for u in (1, 2, 3) for i in (1, 2)
    )
    write("ml/ratings.csv", "userId,movieId,rating,timestamp\n" + rows + "\n")
    code = main(
        [
            "prepare",
            "--input",
            str(tmp_path / "ml"),
            "--root",
            str(tmp_path / "var"),
            "--ds",
            "2026-01-02",
            "--split",
            "random",
            "--test-fraction",
            "0.3",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "rows read" in out and "ratings: train" in out and "quarantined" in out
    assert "prepared 2026-01-02" in out
