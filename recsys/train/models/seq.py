"""``seq``: causal self-attention over each user's newest items (SASRec-style).

Kang and McAuley 2018; trained, as Klenitskiy and Vasilev (RecSys 2023) recommend, with a full
softmax over the catalogue at every position of a window (``recsys.train.sequences``). The
project's sampled-softmax ``RankingLoss`` scores (user, item) rows, not every position of a
sequence, so this family does not use it: its ``_per_example`` is the full softmax (one
``(b, L, dim) x (dim, n_items)`` matmul a step, fine up to ML-1M-sized catalogues).

What it scores with is the factor kernel's shape: the user vector is the encoder's output at the
newest position of the user's history (``recent_items``, set by the loop from the trained splits
when training starts), the item vector is the same embedding the input reads. ``export_arrays``
runs the encoder over every user once, so scoring never imports TensorFlow. Users without
history get a zero vector (their scores are all 0; fold-in is left to do).

Settings (constructor arguments, defaults from ``benchmarks/seq_bench.py``, which reached
NDCG@10 0.0725 on ML-100K leave-last): ``max_len`` 50, ``blocks`` 2, ``heads`` 2, ``dropout``
0.2; ``dim`` is ``train.dim``; ``l2`` is not used (dropout regularises). Positions are learned;
time gaps are not read yet.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from recsys import schema as S
from recsys.train.models.base import RecModel
from recsys.train.sequences import MAX_LEN, SEQ_KEY

EXPORT_BATCH = 1024  # users encoded at once when the arrays are exported


@keras.saving.register_keras_serializable("recsys")
class Seq(RecModel):
    """Pre-norm causal self-attention blocks over a window of item embeddings; the output at a
    position, dotted with the shared item embedding, is the logit of the next item."""

    family = "seq"

    def __init__(
        self,
        *args: Any,
        max_len: int = MAX_LEN,
        blocks: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_len, self.n_blocks = int(max_len), int(blocks)
        self.heads, self.dropout = int(heads), float(dropout)
        # The padding item: an index past the table; padded positions read item 0's row and are
        # zeroed by the mask, so the table is the catalogue's shape (warm start copies its rows).
        self.pad = self.n_items

    def build(self, input_shape=None):
        self.item_emb = self._table("item_emb", self.n_items, self.dim)
        self.positions = self.add_weight(
            name="positions",
            shape=(self.max_len, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=self.init_scale, seed=self.seed),
        )
        # Each user's newest max_len items (pad-filled): the history user vectors are read from.
        self.recent_items = self.add_weight(
            name="recent_items",
            shape=(self.n_users, self.max_len),
            dtype="int32",
            initializer=keras.initializers.Constant(self.pad),
            trainable=False,
        )
        self.drop = layers.Dropout(self.dropout, seed=self.seed)
        self.block_layers = []  # flat (Keras tracks a list of layers): 5 per block
        for k in range(self.n_blocks):
            block = [
                layers.LayerNormalization(epsilon=1e-6, name=f"attn_norm{k}"),
                layers.MultiHeadAttention(
                    self.heads, self.dim // self.heads, dropout=self.dropout, name=f"attn{k}"
                ),
                layers.LayerNormalization(epsilon=1e-6, name=f"ff_norm{k}"),
                layers.Dense(self.dim, activation="gelu", name=f"ff_up{k}"),
                layers.Dense(self.dim, name=f"ff_down{k}"),
            ]
            shape = (None, self.max_len, self.dim)
            block[1].build(shape, shape)  # attention: query and value shapes
            for layer in (block[0], *block[2:]):
                layer.build(shape)
            self.block_layers.extend(block)
        self.out_norm = layers.LayerNormalization(epsilon=1e-6, name="out_norm")
        self.out_norm.build((None, self.max_len, self.dim))
        self.built = True

    # -- the encoder ------------------------------------------------------------------------
    def encode(self, seq, training: bool = False):
        """Windows ``(b, L)`` of item indices -> the encoder's output ``(b, L, dim)``."""
        real = ops.not_equal(seq, self.pad)  # (b, L)
        mask = ops.cast(real, "float32")[..., None]  # (b, L, 1)
        items = ops.take(self.item_emb, ops.where(real, seq, 0), axis=0)  # (b, L, d)
        h = items * self.dim**0.5 + self.positions[None]
        h = self.drop(h, training=training) * mask  # (b, L, d)
        keys = ops.repeat(real[:, None, :], self.max_len, axis=1)  # (b, L, L): no padded keys
        for k in range(0, len(self.block_layers), 5):
            norm1, attend, norm2, up, down = self.block_layers[k : k + 5]
            a = norm1(h)
            a = attend(a, a, attention_mask=keys, use_causal_mask=True, training=training)
            h = h + self.drop(a, training=training)
            f = down(self.drop(up(norm2(h)), training=training))
            h = (h + self.drop(f, training=training)) * mask
        return self.out_norm(h)

    def _item_table(self):
        return self.item_emb.value  # (n_items, d)

    def newest_logits(self, seq, training: bool = False):
        """Logits of every item after each window's newest item: ``(b, n_items)``."""
        h = self.encode(seq, training=training)[:, -1, :]  # (b, d)
        return ops.matmul(h, ops.transpose(self._item_table()))

    def _user_vectors(self, users, training: bool = False):
        """The encoder's output at the newest position of each user's history: (b, d)."""
        seq = tf.gather(self.recent_items.value, users)  # (b, L)
        return self.encode(seq, training=training)[:, -1, :]

    # -- contract -------------------------------------------------------------------------
    def logit(self, inputs, training=False):
        u = self._user_vectors(inputs[S.USER_IDX], training)  # (b, d)
        v = ops.take(self.item_emb, inputs[S.ITEM_IDX], axis=0)  # (b, d)
        logit = ops.sum(u * v, axis=-1, keepdims=True)  # (b, 1)
        return logit, ops.zeros_like(logit[:, 0])

    def cross(self, users, items, training=False):
        u = self._user_vectors(users, training)  # (b, d)
        v = self._item_table() if items is None else ops.take(self.item_emb, items, axis=0)
        return ops.matmul(u, ops.transpose(v))  # (b, s)

    def _per_example(self, x, y, step):
        """Full softmax at every real position of each window, summed and divided by the window
        length (every position weighs the same whatever a window's padding): (b,)."""
        h = self.encode(x[SEQ_KEY], training=True)  # (b, L, d)
        logits = tf.einsum("bld,nd->bln", h, self._item_table())  # (b, L, n_items)
        keep = tf.cast(tf.not_equal(y, self.pad), tf.float32)  # (b, L)
        target = tf.where(y == self.pad, tf.zeros_like(y), y)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)  # (b, L)
        return tf.reduce_sum(ce * keep, axis=1) / self.max_len, None

    def set_recent(self, recent: np.ndarray) -> None:
        """Each user's newest ``max_len`` items (``recsys.train.sequences.last_windows``)."""
        self.recent_items.assign(np.asarray(recent, np.int32))

    def user_matrix(self) -> np.ndarray:
        """Every user's vector ``(n_users, dim)``; zero for a user without history."""
        recent = np.asarray(self.recent_items.value)
        out = np.zeros((self.n_users, self.dim), np.float32)
        for lo in range(0, self.n_users, EXPORT_BATCH):
            seq = recent[lo : lo + EXPORT_BATCH]
            out[lo : lo + len(seq)] = np.asarray(self.encode(seq, training=False)[:, -1, :])
        out[(recent == self.pad).all(axis=1)] = 0.0
        return out

    def export_arrays(self):
        return {
            **self._meta(),
            "user_factors": self.user_matrix(),
            "item_factors": np.asarray(self._item_table(), np.float32),
        }

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "max_len": self.max_len,
            "blocks": self.n_blocks,
            "heads": self.heads,
            "dropout": self.dropout,
        }
