"""Issue 27, case 2: non-finite and absurd ratings and overlong ids are quarantined with reasons
of their own, and a prepared run that holds non-finite ratings is refused by training and
evaluation in one sentence."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from faultkit import assert_published_state_untouched, restored

from recsys import storage
from recsys.cli import main

BAD = [  # (user, item, rating): what a broken export writes
    ("u1", "i1", float("inf")),
    ("u2", "i2", float("-inf")),
    ("u3", "i3", 1e30),
    ("u4", "i4", -1e30),
    ("x" * 10_000, "i5", 4.0),
]


def _log(folder) -> int:
    rng = np.random.default_rng(5)
    pairs = sorted({(int(u), int(i)) for u, i in rng.integers(0, [60, 40], (1500, 2))})
    users = [f"u{u}" for u, _ in pairs] + [b[0] for b in BAD]
    items = [f"i{i}" for _, i in pairs] + [b[1] for b in BAD]
    ratings = [float(rng.integers(1, 6)) for _ in pairs] + [b[2] for b in BAD]
    folder.mkdir()
    table = {"user_id": users, "item_id": items, "rating": ratings}
    table["timestamp"] = list(range(1000, 1000 + len(users)))
    pq.write_table(pa.table(table), folder / "part-0.parquet")
    return len(users)


def test_inf_and_absurd_ratings_and_long_ids_are_quarantined_and_the_rest_trains(
    published, tmp_path, capsys
):
    pytest.importorskip("tensorflow")
    rows = _log(tmp_path / "log")
    root = str(tmp_path / "var")
    capsys.readouterr()
    argv = ["prepare", "--input", str(tmp_path / "log"), "--root", root, "--ds", "2026-05-02"]
    assert main([*argv, "--set", "spark.shuffle_partitions=2"]) == 0, capsys.readouterr().err
    folder = storage.latest(root, "prepared")
    manifest = storage.read_manifest(folder)
    assert manifest["rows_read"] == rows
    assert manifest["quarantine"]["by_reason"] == {
        "non_finite_rating": 2,
        "absurd_rating": 2,
        "id_too_long": 1,
    }
    assert 1.0 <= manifest["rating_min"] <= manifest["rating_max"] <= 5.0
    assert np.isfinite(manifest["global_mean"])
    quarantine = pq.read_table(folder / "quarantine").to_pandas()
    assert sorted(quarantine["reason"]) == sorted(
        Counter(manifest["quarantine"]["by_reason"]).elements()
    )
    train = ["train", "--root", root, "--ds", "2026-05-02", "--set", "train.epochs=1"]
    assert main([*train, "--set", "train.dim=4"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_prepared_run_with_non_finite_ratings_is_refused_in_one_sentence(
    published, capsys, no_heavy_start, command
):
    manifest = published.prepared / storage.MANIFEST
    before = published.pointers()
    with restored(manifest):
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "rating_max": float("inf")}))
        capsys.readouterr()
        code = main([command, "--root", published.root])
        err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"recsys {command}: error: prepared run {published.prepared} holds non-finite ratings "
        f"(rating_max = inf); re-run `recsys prepare` for ds={data['ds']} with this recsys, "
        "which quarantines them"
    )
    assert_published_state_untouched(published, before, capsys)
