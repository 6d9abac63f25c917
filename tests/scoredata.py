"""The small trained root the scoring tests share: a prepared run and a 2-epoch model.

60 users x 40 items (Zipf-popular items, stratified 75/25 split) and, optionally, a cold user
whose one rating (of an item nobody else rated) is held out: the model never saw them, so the
scoring job gives them the popularity list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recsys.config import Config, load_config


def trained_root(base: Path, ds: str, seed: int = 0, cold_user: int | None = None) -> Config:
    """Write the log under ``base``, prepare and train it for ``ds``; returns the config."""
    from recsys.prepare.job import run_prepare
    from recsys.train.step import run_train

    rng = np.random.default_rng(seed)
    pairs = {(int(u), int(rng.zipf(1.3) % 40)) for u in rng.integers(0, 60, 1500)}
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [f"{u},{i},{rng.integers(1, 6)},{1000 + k}" for k, (u, i) in enumerate(sorted(pairs))]
    if cold_user is not None:
        lines.append(f"{cold_user},777,5,5000")
    (base / "log.csv").write_text("\n".join(lines) + "\n")
    cfg = load_config(
        root=str(base / "var"),
        source={"input": str(base / "log.csv")},
        prepare={"split": "stratified", "test_fraction": 0.25, "val_fraction": 0.0},
        train={"epochs": 2, "dim": 8, "eval_max_users": 0},
        spark={"master": "local[2]", "shuffle_partitions": 2},
    )
    run_prepare(cfg, ds)
    run_train(cfg, ds)
    return cfg
