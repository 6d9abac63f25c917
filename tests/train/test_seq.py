"""The sequential family ``seq``: its windows by hand, its exported factors against the Keras
model, and end to end on a click log where the next item follows from the last one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

tf = pytest.importorskip("tensorflow")

from recsys import schema as S  # noqa: E402
from recsys.artifact import Scorer  # noqa: E402
from recsys.cli import main  # noqa: E402
from recsys.splits import load_split  # noqa: E402
from recsys.train.models.build import model_class  # noqa: E402
from recsys.train.sequences import last_windows, user_sequences, windows  # noqa: E402


def test_sequences_windows_and_last_windows_by_hand():
    rows = pd.DataFrame(
        {
            S.USER_IDX: [1, 0, 0, 0, 1],
            S.ITEM_IDX: [4, 2, 1, 3, 0],
            S.TS: [5, 30, 10, 10, 7],  # user 0: items 1 and 3 in the same second, by item
        }
    )
    seqs = user_sequences(rows, 3)
    assert [s.tolist() for s in seqs] == [[1, 3, 2], [4, 0], []]
    xs, ys = windows(seqs, max_len=2, pad=9)
    assert xs.tolist() == [[1, 3], [9, 4]] and ys.tolist() == [[3, 2], [4, 0]]
    assert last_windows(seqs, 2, 9).tolist() == [[3, 2], [4, 0], [9, 9]]


def test_exported_factors_score_as_the_keras_model_at_the_newest_position():
    n_users, n_items, max_len = 3, 6, 4
    model = model_class("seq")(n_users, n_items, dim=8, objective="ranking", max_len=max_len)
    model.build()
    seqs = [np.array([0, 2, 5, 1, 3]), np.array([4]), np.array([], np.int64)]
    recent = last_windows(seqs, max_len, pad=n_items)
    model.set_recent(recent)
    scores = Scorer(model.export_arrays()).score_block(np.arange(n_users))  # (3, n_items)
    logits = np.asarray(model.newest_logits(tf.constant(recent[:2])))
    np.testing.assert_allclose(scores[:2], logits, atol=1e-4)
    assert not scores[2].any()  # no history: a zero vector
    pairs = {S.USER_IDX: tf.constant([0, 1]), S.ITEM_IDX: tf.constant([3, 5])}
    np.testing.assert_allclose(
        np.asarray(model(pairs))[:, 0], [logits[0, 3], logits[1, 5]], atol=1e-4
    )


N_USERS, N_ITEMS = 60, 30


@pytest.fixture(scope="module")
def chain_root(spark, tmp_path_factory, click_run):
    """Clicks where each user walks a fixed cycle of items (a shuffled order) from a random
    start: the next item is the one after the last, which a bag of items cannot tell from the
    one before the first."""
    base = tmp_path_factory.mktemp("chain")
    rng = np.random.default_rng(0)
    cycle = rng.permutation(N_ITEMS)
    lines, ts = ["member,sku,when"], 1_600_000_000
    for u in range(N_USERS):
        start, length = int(rng.integers(N_ITEMS)), int(rng.integers(8, 13))
        for k in range(length):
            ts += 100
            lines.append(f"m{u},sku-{cycle[(start + k) % N_ITEMS]},{ts}")
    return click_run(base, lines)


def _train(root: str, model: str, run: str, epochs: int) -> Path:
    code = main(
        ["train", "--root", root, "--ds", "2026-02-04", "--run", run]
        + ["--set", f"train.model={model}", "--set", f"train.epochs={epochs}"]
        + ["--set", "train.patience=100"]
    )
    assert code == 0
    return Path(root) / "models" / "ds=2026-02-04" / f"run={run}"


def _next_item_hits(root: str, model_dir: Path) -> float:
    """Share of users whose top unseen item (history: their train rows) is their val item."""
    prepared = sorted((Path(root) / "prepared").glob("ds=*/run=*"))[-1]
    train, val = load_split(prepared, "train"), load_split(prepared, "val")
    scores = Scorer.load(model_dir / "arrays.npz").score_block(np.arange(N_USERS))
    scores[train[S.USER_IDX].to_numpy(), train[S.ITEM_IDX].to_numpy()] = -np.inf
    top = scores.argmax(axis=1)
    return float(np.mean(top[val[S.USER_IDX].to_numpy()] == val[S.ITEM_IDX].to_numpy()))


def test_seq_trains_end_to_end_and_follows_the_last_item_where_mf_cannot(chain_root):
    seq_dir = _train(chain_root, "seq", "seq", epochs=40)
    manifest = json.loads((seq_dir / "manifest.json").read_text())
    assert manifest["family"] == "seq" and manifest["model_version"].startswith("seq-")
    mf_dir = _train(chain_root, "mf", "mf", epochs=40)
    seq_hits, mf_hits = _next_item_hits(chain_root, seq_dir), _next_item_hits(chain_root, mf_dir)
    assert seq_hits >= 0.8, (seq_hits, mf_hits)
    assert mf_hits <= seq_hits - 0.3, (seq_hits, mf_hits)


def test_seq_with_the_rating_objective_is_one_sentence(tmp_path):
    from recsys.config import TrainConfig
    from recsys.errors import RecsysError
    from recsys.train.sequences import sequence_inputs

    tcfg = TrainConfig(model="seq", objective="rating")
    with pytest.raises(RecsysError, match="trains with --objective ranking only") as err:
        sequence_inputs(tcfg, tmp_path, None, None)
    assert "\n" not in str(err.value)
