"""Issue 27, case 3: a user who rated every item gets an empty list by design, counted in the
scoring manifest and the publish summary, never a refused table; a split that leaves nothing to
evaluate says so in one line, and the gate refuses a model with nothing to compare on."""

from __future__ import annotations

import json

import numpy as np
import pytest
from faultkit import assert_published_state_untouched, restored

from recsys import storage
from recsys.cli import main
from recsys.config import load_config

COMPLETIST = 999


def _log(path) -> None:
    rng = np.random.default_rng(11)
    pairs = {(int(u), int(rng.zipf(1.3) % 40)) for u in rng.integers(0, 60, 1500)}
    items = sorted({i for _, i in pairs})
    pairs |= {(COMPLETIST, i) for i in items}  # every item of the log
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [f"{u},{i},{rng.integers(1, 6)},{1000 + k}" for k, (u, i) in enumerate(sorted(pairs))]
    path.write_text("\n".join(lines) + "\n")


def test_a_user_who_rated_every_item_gets_an_empty_list_and_the_table_publishes(
    spark, tmp_path, capsys
):
    pytest.importorskip("tensorflow")
    from recsys.prepare.job import run_prepare
    from recsys.score.job import run_score
    from recsys.train.step import run_train

    _log(tmp_path / "log.csv")
    cfg = load_config(
        root=str(tmp_path / "var"),
        source={"input": str(tmp_path / "log.csv")},
        prepare={"split": "stratified", "test_fraction": 0.25, "val_fraction": 0.0},
        train={"epochs": 1, "dim": 4, "eval_max_users": 0},
        spark={"master": "local[2]", "shuffle_partitions": 2},
    )
    ds = "2026-05-02"
    run_prepare(cfg, ds)
    run_train(cfg, ds)
    scored = run_score(cfg, ds, "s", n=5)
    assert scored.manifest.empty_lists == 1
    capsys.readouterr()
    assert main(["publish", "--root", cfg.root, "--ds", ds, "--run", "s"]) == 0
    out = capsys.readouterr().out.strip()
    users = scored.manifest.rows // 5
    assert out == (
        f"published {scored.path}: {scored.manifest.rows:,} rows for {users:,} users, "
        "1 with an empty list (no unseen candidate)"
    )
    assert storage.latest(cfg.root, "recommendations") == scored.path
    code = main(["recommend", "--root", cfg.root, "--user", str(COMPLETIST)])
    assert code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith(f"recsys recommend: error: user '{COMPLETIST}' is not in the published table")
    )


def test_the_gate_refuses_a_model_with_nothing_evaluated(published, capsys, no_heavy_start):
    manifest = published.model / storage.MANIFEST
    before = published.pointers()
    with restored(manifest):
        data = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**data, "metrics": {**data["metrics"], "test": {}}}))
        capsys.readouterr()
        code = main(["gate", "--root", published.root, "--run", "f"])
        err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"recsys gate: error: {published.model} has no test ndcg@10 to judge (empty test split, "
        "or k differs from the training run's train.k); prepare with a split that holds rows out"
    )
    assert_published_state_untouched(published, before, capsys)


def test_a_split_with_nothing_to_evaluate_says_so_and_the_gate_refuses(spark, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [f"{u},{u % 10},{1 + u % 5},{1000 + u}" for u in range(40)]  # one rating per user
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    root = str(tmp_path / "var")
    ds = ["--root", root, "--ds", "2026-05-02"]
    capsys.readouterr()
    assert main(["prepare", "--input", str(tmp_path / "log.csv"), *ds]) == 0
    prepared = storage.latest(root, "prepared")
    assert main(["train", *ds, "--set", "train.epochs=1", "--set", "train.dim=4"]) == 0
    out = capsys.readouterr().out
    assert (
        f"the split of {prepared} left no val or test rows (too few rows per user to hold one "
        "out), so nothing was evaluated and the gate will refuse this model" in out
    )
    assert main(["gate", *ds]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("recsys gate: error: ") and "has no test ndcg@10 to judge" in err
    assert not (storage.local_root(root) / "gates").exists() or not list(
        (storage.local_root(root) / "gates").glob("ds=*/run=*")
    )
