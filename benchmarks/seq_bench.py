"""A SASRec-style sequential prototype on ML-100K, next to EASE and recency-weighted EASE.

    python benchmarks/seq_bench.py --data /tmp/ml-100k [--protocol leave-last|return|all] \
        [--max-len 50] [--dim 64] [--blocks 2] [--epochs 200] [--negatives 0] [--seed 0] \
        [--ties item|file] [--no-seq]

A research prototype for a ``seq`` model family (issue 25), self-contained: it does not touch
``recsys.train``. The splits are built here with the rules of ``prepare`` (each user's rows in
time order, ties by item id; ``leave-last``: the newest row is test, the one before validation;
``return``: the first row after the user's last pause of at least a day is test, the row before
validation, the rows after it are dropped, users without such a pause only train), then:

* EASE (``recsys.evaluate.baselines.EASE``, lambda the best of the project's grid on
  validation) and recency-weighted EASE (``recsys.evaluate.protocol.fit_recency_ease``: decay
  the best of 0.8-1.0 on validation), as in every ranking report;
* the prototype: item embedding shared by input and output, learned positions, ``--blocks``
  pre-norm blocks of causal multi-head self-attention and a feed-forward layer over each user's
  newest ``--max-len`` train items, trained to predict every next item with a full softmax over
  the catalogue (``--negatives N`` samples N shared negatives per batch instead), Adam, early
  stopping on validation NDCG@10 every 5 epochs. A user's vector is the encoder's output at the
  newest position, so the scores are ``user_vector . item_embedding``: the factor kernel's
  shape (what the artifact would hold).

Every list is a real top-10 of the items the user did not rate in train, picked by the
project's selector (``RankingTask``: ties go to the lower item index, which on ML-100K roughly
means the more popular item; a tie never favours the test item by construction). The history a
user is scored from is their train rows for every method (the project's protocol: the
validation row is not history). It prints NDCG@10 and hit rate for each method and each
protocol, as a multiple of EASE, and the prototype's training seconds and epochs.

``--ties file`` orders a user's rows of the same second as the file lists them instead of by
item id (44% of ML-100K users have several rows in their newest second, so this choice alone
moves the leave-last figures). ``--no-seq`` prints the baselines only, and the test NDCG@10 of
every decay of the grid (to see how far the validation choice is from the best one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.evaluate.protocol import RankingTask, fit_ease, fit_recency_ease
from recsys.evaluate.recency import RECENCY_DECAYS as DECAYS
from recsys.evaluate.recency import History, RecencyEASE

DAY = 86_400


def load(path: str, ties: str = "item") -> tuple[pd.DataFrame, int, int]:
    """u.data as prepared columns, items and users numbered from 0 in id order, each user's rows
    in time order; rows of the same second by item id (``prepare``'s rule) or, ``ties="file"``,
    in the order of the file."""
    raw = pd.read_csv(path, sep="\t", names=["u", "i", "r", "ts"])
    users, items = np.unique(raw.u), np.unique(raw.i)
    df = pd.DataFrame(
        {
            S.USER_IDX: np.searchsorted(users, raw.u).astype(np.int32),
            S.ITEM_IDX: np.searchsorted(items, raw.i).astype(np.int32),
            S.RATING: raw.r.astype(np.float32),
            S.TS: raw.ts.astype(np.int64),
        }
    )
    same_second = df[S.ITEM_IDX] if ties == "item" else np.arange(len(df))
    order = np.lexsort((same_second, df[S.TS], df[S.USER_IDX]))  # user, time, then the tie rule
    return df.iloc[order].reset_index(drop=True), users.size, items.size


def split(df: pd.DataFrame, protocol: str) -> dict[str, pd.DataFrame]:
    """train / val / test frames by ``prepare``'s rules (rows in user, time order)."""
    pos = df.groupby(S.USER_IDX).cumcount().to_numpy() + 1  # 1-based position in time
    if protocol == "leave-last":
        n = df.groupby(S.USER_IDX)[S.ITEM_IDX].transform("size").to_numpy()
        test_pos = np.where(n >= 3, n, 0)
    else:
        gap = df.groupby(S.USER_IDX)[S.TS].diff().to_numpy()
        pause = np.where(gap >= DAY, pos, 0)
        last = pd.Series(pause).groupby(df[S.USER_IDX].to_numpy()).transform("max").to_numpy()
        test_pos = np.where(last >= 3, last, 0)
    kind = np.where(
        test_pos == 0,
        "train",
        np.where(
            pos == test_pos,
            "test",
            np.where(pos == test_pos - 1, "val", np.where(pos < test_pos, "train", "after")),
        ),
    )
    return {name: df[kind == name] for name in ("train", "val", "test")}


def sequences(train: pd.DataFrame, n_users: int) -> list[np.ndarray]:
    """Each user's train items in time order, ids shifted by 1 (0 pads)."""
    groups = train.groupby(S.USER_IDX)[S.ITEM_IDX]
    out = [np.zeros(0, np.int32)] * n_users
    for u, items in groups:
        out[u] = items.to_numpy().astype(np.int32) + 1
    return out


def windows(seqs: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) ``(w, max_len)``: each user's sequence cut from the end into windows of
    ``max_len + 1`` items (left-padded with 0), input = all but the last, target = all but the
    first."""
    xs, ys = [], []
    for seq in seqs:
        for end in range(len(seq), 1, -max_len):
            chunk = seq[max(0, end - max_len - 1) : end]
            pad = np.zeros(max_len + 1 - chunk.size, np.int32)
            chunk = np.concatenate([pad, chunk])
            xs.append(chunk[:-1])
            ys.append(chunk[1:])
    return np.stack(xs), np.stack(ys)


def last_window(seqs: list[np.ndarray], users: np.ndarray, max_len: int) -> np.ndarray:
    """Each user's newest ``max_len`` items, left-padded: ``(b, max_len)``."""
    out = np.zeros((users.size, max_len), np.int32)
    for row, u in enumerate(users):
        tail = seqs[u][-max_len:]
        if tail.size:
            out[row, -tail.size :] = tail
    return out


def build_model(n_items: int, args: argparse.Namespace):
    """The encoder ``(b, max_len) -> (b, max_len, dim)`` and the item embedding it shares."""
    import keras
    from keras import layers, ops

    class Encoder(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.items = layers.Embedding(n_items + 1, args.dim, name="items")
            self.positions = layers.Embedding(args.max_len, args.dim, name="positions")
            self.drop = layers.Dropout(args.dropout)
            self.blocks = [
                (
                    layers.LayerNormalization(epsilon=1e-6),
                    layers.MultiHeadAttention(
                        args.heads, args.dim // args.heads, dropout=args.dropout
                    ),
                    layers.LayerNormalization(epsilon=1e-6),
                    layers.Dense(args.dim, activation="gelu"),
                    layers.Dense(args.dim),
                )
                for _ in range(args.blocks)
            ]
            self.norm = layers.LayerNormalization(epsilon=1e-6)

        def call(self, seq, training=False):
            real = ops.not_equal(seq, 0)  # (b, L)
            mask = ops.cast(real, "float32")[..., None]  # (b, L, 1)
            h = self.items(seq) * args.dim**0.5 + self.positions(ops.arange(args.max_len))[None]
            h = self.drop(h, training=training) * mask  # (b, L, d)
            keys = ops.repeat(real[:, None, :], args.max_len, axis=1)  # (b, L, L) no pad keys
            for norm1, attend, norm2, up, down in self.blocks:
                a = norm1(h)
                a = attend(a, a, attention_mask=keys, use_causal_mask=True, training=training)
                h = h + self.drop(a, training=training)
                f = down(self.drop(up(norm2(h)), training=training))
                h = (h + self.drop(f, training=training)) * mask
            return self.norm(h)

    encoder = Encoder()
    encoder(np.zeros((1, args.max_len), np.int32))  # build the weights
    return encoder, encoder.items


class SeqModel:
    """The encoder, a full (or sampled) softmax over the shared item embedding, and a trainer."""

    def __init__(self, n_items: int, args: argparse.Namespace) -> None:
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(args.seed)
        self.args, self.n_items = args, n_items
        self.encoder, self.embed = build_model(n_items, args)
        self.opt = keras.optimizers.Adam(args.lr)
        self.tf = tf

        @tf.function(jit_compile=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                h = self.encoder(x, training=True)  # (b, L, d)
                table = self.embed.embeddings  # (n + 1, d)
                keep = tf.cast(y > 0, tf.float32)  # (b, L)
                if args.negatives:
                    neg = tf.random.uniform((args.negatives,), 1, n_items + 1, tf.int32)
                    pos_logit = tf.reduce_sum(h * tf.gather(table, y), -1, keepdims=True)
                    neg_logit = tf.einsum("bld,nd->bln", h, tf.gather(table, neg))
                    neg_logit -= 1e9 * tf.cast(neg[None, None] == y[..., None], tf.float32)
                    logits = tf.concat([pos_logit, neg_logit], -1)  # (b, L, 1 + N)
                    target = tf.zeros_like(y)
                else:
                    logits = tf.einsum("bld,nd->bln", h, table[1:])  # (b, L, n)
                    target = tf.maximum(y - 1, 0)
                ce = tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)
                loss = tf.reduce_sum(ce * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)
            weights = self.encoder.trainable_weights
            self.opt.apply_gradients(zip(tape.gradient(loss, weights), weights, strict=True))
            return loss

        self.step = step

    def user_vectors(self, windows_: np.ndarray) -> np.ndarray:
        """The encoder's output at the newest position, ``(b, d)``."""
        h = self.encoder.predict(windows_, batch_size=512, verbose=0)
        return h[:, -1, :]

    def item_vectors(self) -> np.ndarray:
        return np.asarray(self.embed.embeddings)[1:]  # (n_items, d)

    def fit(self, xs, ys, evaluate) -> tuple[int, float, float]:
        """Train until validation NDCG@10 (``evaluate()``) stops improving for 4 checks."""
        rng = np.random.default_rng(self.args.seed)
        best, best_epoch, since, best_weights = -1.0, 0, 0, None
        started = time.perf_counter()
        for epoch in range(1, self.args.epochs + 1):
            order = rng.permutation(len(xs))
            for start in range(0, len(xs) - self.args.batch + 1, self.args.batch):
                idx = order[start : start + self.args.batch]  # whole batches: one XLA shape
                self.step(self.tf.constant(xs[idx]), self.tf.constant(ys[idx]))
            if epoch % 5:
                continue
            got = evaluate()
            print(f"  epoch {epoch}: validation ndcg@10 {got:.4f}", flush=True)
            if got > best:
                best, best_epoch, since = got, epoch, 0
                best_weights = self.encoder.get_weights()
            else:
                since += 1
                if since >= 4:
                    break
        self.encoder.set_weights(best_weights)
        return best_epoch, best, time.perf_counter() - started


def rank(task: RankingTask, score_block, k: int = 10) -> dict[str, float]:
    return task.metrics(task.recommend(score_block, k), k)


def print_rows(rows: dict[str, dict[str, float]], ease_info: dict) -> None:
    base = rows[f"EASE (lambda {ease_info['lambda']:g})"]["ndcg@10"]
    print(f"{'':34s}{'ndcg@10':>10s}{'hit@10':>10s}{'/ EASE':>10s}")
    for name, m in rows.items():
        ratio = m["ndcg@10"] / base
        print(f"{name:34s}{m['ndcg@10']:10.4f}{m['hit_rate@10']:10.4f}{ratio:10.3f}", flush=True)


def run(df: pd.DataFrame, n_users: int, n_items: int, protocol: str, args) -> None:
    parts = split(df, protocol)
    train, val, test = parts["train"], parts["val"], parts["test"]
    print(
        f"\n{protocol}: {len(train):,} train rows, {test[S.USER_IDX].nunique()} test users",
        flush=True,
    )
    val_task = RankingTask.build(train, val, n_users, n_items)
    test_task = RankingTask.build(train, test, n_users, n_items)
    ease, info = fit_ease(train, val, n_users, n_items)
    recency, rinfo = fit_recency_ease(ease, train, val, n_users, n_items)
    rows = {
        "popularity": rank(test_task, lambda u: np.tile(test_task.popularity, (len(u), 1))),
        f"EASE (lambda {info['lambda']:g})": rank(test_task, ease.score_block),
        f"EASE x {rinfo['decay']:g}^age": rank(test_task, recency.score_block),
    }
    if args.no_seq:
        print_rows(rows, info)
        history = History.build(train, n_users, n_items)
        by_decay = {d: rank(test_task, RecencyEASE(ease, history, d).score_block) for d in DECAYS}
        print(
            "test ndcg@10 of each decay (not a choice: test is not for choosing): "
            + ", ".join(f"{d:g} {m['ndcg@10']:.4f}" for d, m in by_decay.items())
        )
        return None
    seqs = sequences(train, n_users)
    xs, ys = windows(seqs, args.max_len)
    model = SeqModel(n_items, args)
    items = model.item_vectors

    def scorer(users: np.ndarray):
        vectors = model.user_vectors(last_window(seqs, users, args.max_len))
        return vectors @ items().T  # (b, n_items)

    def val_ndcg() -> float:
        users = val_task.users
        return rank(val_task, lambda ids: scorer(ids))["ndcg@10"] if users.size else 0.0

    epoch, best, seconds = model.fit(xs, ys, val_ndcg)
    rows[f"seq (epoch {epoch}, {seconds:.0f}s)"] = rank(test_task, scorer)
    print_rows(rows, info)
    print(
        f"seq: {len(xs):,} windows of {args.max_len}, {seconds / max(epoch, 1):.2f} s/epoch "
        f"(to the best epoch), best validation ndcg@10 {best:.4f}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/tmp/ml-100k", help="the ml-100k folder")
    parser.add_argument("--protocol", default="all", choices=["leave-last", "return", "all"])
    parser.add_argument("--max-len", type=int, default=50, help="newest items the model reads")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=200, help="upper bound (early stopping)")
    parser.add_argument("--negatives", type=int, default=0, help="0 = full softmax")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--ties",
        default="item",
        choices=["item", "file"],
        help="order of a user's rows of the same second: by item id (prepare) or file order",
    )
    parser.add_argument("--no-seq", action="store_true", help="the baselines only")
    args = parser.parse_args()
    path = os.path.join(args.data, "u.data")
    if not os.path.isfile(path):
        print(f"error: {path} does not exist; pass the ml-100k folder as --data", file=sys.stderr)
        return 2
    df, n_users, n_items = load(path, args.ties)
    for protocol in ("leave-last", "return") if args.protocol == "all" else [args.protocol]:
        run(df, n_users, n_items, protocol, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
