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


def test_a_full_disk_met_by_spark_or_tensorflow_is_one_sentence_and_leaves_no_staging(
    tmp_path, capsys
):
    """The JVM's IOException reaches Python as a py4j error, not an OSError."""
    import argparse

    from recsys import storage
    from recsys.cli.common import run_handler

    class Py4JJavaError(Exception):
        pass

    def handler(_args):
        paths = storage.new_run(str(tmp_path), "prepared", "2026-01-01", "full")
        assert paths.staging.is_dir()
        raise Py4JJavaError("An error occurred: java.io.IOException: No space left on device")

    assert run_handler("prepare", handler, argparse.Namespace()) == 2
    err = capsys.readouterr().err
    assert err == (
        "recsys prepare: error: a disk is full (Py4JJavaError: No space left on device) under "
        "the storage root or Spark's spark.local.dir; free space there (`recsys retention` "
        "deletes old runs) or pass another --root, then re-run\n"
    )
    assert not list((tmp_path / "prepared").rglob("_staging-*"))

    def bug(_args):
        storage.new_run(str(tmp_path), "prepared", "2026-01-01", "bug")
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback, not its staging folder
        run_handler("prepare", bug, argparse.Namespace())
    assert not list((tmp_path / "prepared").rglob("_staging-*"))
