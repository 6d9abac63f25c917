"""The input of the sequential family (``seq``): each user's items in time order.

The other families train on (user, item) rows (``recsys.train.data``); ``seq`` trains on
windows of each user's item sequence, predicting every next item from the items before it
(SASRec, Kang and McAuley 2018). Here:

* ``user_sequences``: a prepared run's rows -> each user's item indices, oldest first (rows of
  the same second by item index, the order ``prepare`` splits by);
* ``windows``: each sequence cut from its newest end into ``max_len + 1`` items, left-padded;
  input = all but the last, target = all but the first;
* ``last_windows``: each user's newest ``max_len`` items, the history the user vector is read
  from when training ends;
* ``sequence_plan`` / ``sequence_input_fn``: the loop's batch plan and ``tf.data`` input for the
  windows (one window is one example, so an epoch is one pass over the windows).

Item index ``n_items`` pads (the model masks padded positions; its item table has no row for
it, so it keeps the catalogue's shape).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.config import TrainConfig
from recsys.train.plan import Plan, epoch_steps

log = logging.getLogger(__name__)

# The window batch when train.batch_per_replica is 0 (the prototype's, benchmarks/seq_bench.py).
SEQ_BATCH = 128
SEQ_KEY = "seq"  # the model's input: a (b, max_len) window of item indices
MAX_LEN = 50  # newest items a user vector reads (the prototype's; benchmarks/seq_bench.py)


def user_sequences(rows: pd.DataFrame, n_users: int) -> list[np.ndarray]:
    """Each user's item indices in time order (ties by item index); empty for users without
    rows. ``rows`` needs the user, item and timestamp columns."""
    users = rows[S.USER_IDX].to_numpy()
    items = rows[S.ITEM_IDX].to_numpy().astype(np.int32)
    order = np.lexsort((items, rows[S.TS].to_numpy(), users))
    users, items = users[order], items[order]
    starts = np.searchsorted(users, np.arange(n_users + 1))
    return [items[starts[u] : starts[u + 1]] for u in range(n_users)]


def windows(seqs: list[np.ndarray], max_len: int, pad: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each ``(w, max_len)`` int32: every sequence of two items or more cut
    from its newest end into windows of ``max_len + 1`` items, left-padded with ``pad``."""
    xs, ys = [], []
    for seq in seqs:
        for end in range(len(seq), 1, -max_len):
            chunk = seq[max(0, end - max_len - 1) : end]
            full = np.full(max_len + 1, pad, np.int32)
            full[max_len + 1 - chunk.size :] = chunk
            xs.append(full[:-1])
            ys.append(full[1:])
    if not xs:
        empty = np.zeros((0, max_len), np.int32)
        return empty, empty
    return np.stack(xs), np.stack(ys)


def last_windows(seqs: list[np.ndarray], max_len: int, pad: int) -> np.ndarray:
    """Each user's newest ``max_len`` items, left-padded with ``pad``: ``(n_users, max_len)``."""
    out = np.full((len(seqs), max_len), pad, np.int32)
    for user, seq in enumerate(seqs):
        tail = seq[-max_len:]
        if tail.size:
            out[user, max_len - tail.size :] = tail
    return out


def history_splits(trained: list[str]) -> list[str]:
    """The splits a user's history is read from: the train rows, then any split trained on
    (after a refit the val and test rows are the newest of each history)."""
    return ["train", *[s for s in trained if s != "train"]]


def load_sequences(prepared: Path, splits: list[str], n_users: int) -> list[np.ndarray]:
    """Each user's items of ``splits`` of the prepared run, in time order."""
    from recsys.splits import load_split

    rows = load_split(prepared, splits, columns=(S.USER_IDX, S.ITEM_IDX, S.TS))
    return user_sequences(rows, n_users)


def sequence_plan(tcfg: TrainConfig, plan: Plan, n_windows: int) -> Plan:
    """``plan`` with its batch and steps counted in windows (the rows' plan counts rows)."""
    per_replica = tcfg.batch_per_replica or SEQ_BATCH
    global_batch = per_replica * plan.replicas
    steps = epoch_steps(max(n_windows, global_batch), global_batch, plan.replicas)
    log.info("seq: %d windows, global batch %d, %d steps per epoch", n_windows, global_batch, steps)
    return replace(plan, per_replica=per_replica, global_batch=global_batch, steps=steps, group=1)


def sequence_input_fn(xs: np.ndarray, ys: np.ndarray, plan: Plan, seed: int):
    """The ``tf.data`` input function (per input context) of the windows: shuffled every pass,
    repeated, whole batches (a window set smaller than a batch is repeated to fill one)."""
    import tensorflow as tf

    def train_fn(ctx):
        ds = tf.data.Dataset.from_tensor_slices(({SEQ_KEY: xs}, ys))
        batch = plan.global_batch
        if ctx is not None:
            ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
            batch = ctx.get_per_replica_batch_size(plan.global_batch)
        ds = ds.shuffle(len(xs), seed=seed, reshuffle_each_iteration=True).repeat()
        return ds.batch(batch, drop_remainder=True).prefetch(2)

    return train_fn


def sequence_inputs(tcfg: TrainConfig, prepared: Path, manifest, plan: Plan):
    """What the loop needs to train a sequential family on ``plan``'s splits: the plan in
    windows, the ``tf.data`` input function and each user's newest items (``last_windows`` of
    the train rows and every split trained on).

    Raises:
        RecsysError: the objective is not ranking (the family predicts the next item).
    """
    from recsys.errors import RecsysError

    if tcfg.objective != "ranking":
        raise RecsysError(
            f"train.model={tcfg.model} predicts the next item: it trains with --objective "
            f"ranking only, got {tcfg.objective!r}"
        )
    from recsys.train.models.build import model_class

    max_len = int(model_class(tcfg.model).settings(tcfg).get("max_len", MAX_LEN))
    pad = manifest.n_items
    xs, ys = windows(load_sequences(prepared, plan.trained, manifest.n_users), max_len, pad)
    if not len(xs):
        raise RecsysError(
            f"the prepared run {prepared} has no user with two rows or more in "
            f"{', '.join(plan.trained)}: train.model={tcfg.model} has no next item to learn"
        )
    plan = sequence_plan(tcfg, plan, len(xs))
    history = load_sequences(prepared, history_splits(plan.trained), manifest.n_users)
    return plan, sequence_input_fn(xs, ys, plan, tcfg.seed), last_windows(history, max_len, pad)
