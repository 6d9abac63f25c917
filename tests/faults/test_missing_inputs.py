"""Issue 27, case 1: a missing input or an unknown release is an error, never synthetic data.

Synthetic data comes only when asked for by name (``synthetic:<shape>``); a table built from it
says so in its manifests and in ``recsys summary``; a dataset name never writes outside --dest.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest
from faultkit import DS2, assert_published_state_untouched, restored

from recsys import storage
from recsys.cli import main
from recsys.data.download import RELEASES

KNOWN = ", ".join(RELEASES)


def _get(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["data", "get", *argv])
    out = capsys.readouterr()
    return code, out.out.strip(), out.err.strip()


@pytest.mark.parametrize("name", ["/data/typo", "../../../x", "ml-latest-smal"])
def test_a_missing_path_or_unknown_release_is_one_sentence_and_writes_nothing(
    tmp_path, capsys, name
):
    dest = tmp_path / "a" / "b" / "dest"
    code, out, err = _get(capsys, name, "--dest", str(dest), "--offline")
    assert code == 2 and out == ""
    assert err == (
        f"recsys data: error: --dataset {name!r} is neither an existing path nor a MovieLens "
        f"release ({KNOWN}); fix the path or the name, or ask for synthetic data by name with "
        "--dataset synthetic:ml-latest-small"
    )
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # not even --dest


def test_an_offline_release_that_is_not_there_is_an_error_not_synthetic_data(tmp_path, capsys):
    code, out, err = _get(capsys, "ml-latest-small", "--dest", str(tmp_path), "--offline")
    assert code == 2 and out == ""
    assert err == (
        f"recsys data: error: ml-latest-small is not in {tmp_path} (neither the folder "
        "ml-latest-small/ nor ml-latest-small.zip is there) and --offline forbids downloading "
        f"it; run without --offline, copy ml-latest-small.zip into {tmp_path}, or ask for "
        "synthetic data by name with --dataset synthetic:ml-latest-small"
    )
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_synthetic_shape_is_refused(tmp_path, capsys):
    code, _, err = _get(capsys, "synthetic:../../x", "--dest", str(tmp_path))
    assert code == 2
    assert err == (
        "recsys data: error: --dataset synthetic:../../x names no synthetic shape; use one of "
        "synthetic:ml-latest-small, synthetic:ml-1m, synthetic:ml-25m"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_synthetic_folder_is_flagged_through_prepare_score_and_summary(
    published, tmp_path, capsys
):
    synth = tmp_path / "synth"
    capsys.readouterr()
    argv = ["data", "synth", "--users", "100", "--items", "50", "--ratings", "2000"]
    assert main([*argv, "--dest", str(synth)]) == 0
    result = tmp_path / "got.json"
    code, out, _ = _get(capsys, str(synth), "--result-file", str(result))
    assert code == 0 and out == str(synth)
    assert json.loads(result.read_text())["synthetic"] is True

    root = tmp_path / "var"
    capsys.readouterr()
    assert main(["prepare", "--input", str(synth), "--root", str(root), "--ds", DS2]) == 0
    prepared = storage.read_manifest(storage.latest(str(root), "prepared"))
    assert prepared["synthetic"] is True

    # The published table's manifest says so, and `recsys summary` prints it.
    manifest = published.table / storage.MANIFEST
    with restored(manifest):
        data = json.loads(manifest.read_text())
        assert data.get("synthetic", False) is False
        manifest.write_text(json.dumps({**data, "synthetic": True}))
        capsys.readouterr()
        assert main(["summary", "--root", published.root]) == 0
        out = capsys.readouterr().out
    assert (
        "The published table was built from SYNTHETIC data (--dataset synthetic:...), "
        "not from a real log." in out
    )


@pytest.mark.slow
def test_a_typo_in_the_nightly_dataset_fails_the_night_and_keeps_yesterday(published, capsys):
    if importlib.util.find_spec("airflow") is None:  # not imported here: it takes over stdout
        pytest.skip("airflow is not installed")
    before = published.pointers()
    base = storage.local_root(published.root)
    runs = sorted(base.glob(f"*/ds={DS2}/*"))
    argv = ["nightly", "--root", published.root, "--ds", DS2, "--dataset", "/data/typo"]
    with restored(base / "airflow"):  # the command as a person runs it, in its own process
        proc = subprocess.run(
            [sys.executable, "-m", "recsys.cli", *argv], capture_output=True, text=True, timeout=600
        )
    assert proc.returncode == 1, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"recsys nightly: the run for {DS2} failed after ")
    assert first.endswith(
        "recsys data: error: --dataset '/data/typo' is neither an existing path nor a "
        f"MovieLens release ({KNOWN}); fix the path or the name, or ask for synthetic data "
        "by name with --dataset synthetic:ml-latest-small"
    )
    assert sorted(base.glob(f"*/ds={DS2}/*")) == runs  # nothing committed
    assert_published_state_untouched(published, before, capsys)
