"""Neural models: NCF (embeddings concatenated, dense layers) and NeuMF (GMF + MLP branches)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from recsys import schema as S
from recsys.train.base import RecModel


class _MLP(layers.Layer):
    """Dense ReLU tower with dropout; weights exported layer by layer for numpy scoring."""

    def __init__(self, sizes: tuple[int, ...], dropout: float, seed: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.sizes, self.dropout = tuple(sizes), float(dropout)
        self.dense = [
            layers.Dense(
                n, activation="relu", kernel_initializer=keras.initializers.HeNormal(seed + k)
            )
            for k, n in enumerate(self.sizes)
        ]
        self.drop = [layers.Dropout(self.dropout, seed=seed + k) for k in range(len(self.sizes))]

    def build(self, input_shape):
        width = input_shape[-1]
        for dense in self.dense:
            dense.build((None, width))
            width = dense.units
        self.built = True

    def call(self, x, training=False):
        for dense, drop in zip(self.dense, self.drop, strict=True):
            x = drop(dense(x), training=training)
        return x

    def cross(self, user_vecs, item_vecs, training=False):
        """The tower over every [user, item] pair of two sets: (b, s, sizes[-1]).

        The first layer splits, ``[u, v] @ W = u @ W_u + v @ W_i``: each part once per row,
        only the sum and the later layers per pair.
        """
        first = self.dense[0]
        dim = user_vecs.shape[-1]
        # Dropout masks the per-row parts, not the (b * s) pairs: a mask per pair costs more
        # than the layer itself (under XLA on CPU, 100x more), and every pair of a user shares
        # that user's mask in the exported scorer anyway (no dropout at inference).
        a = self.drop[0](ops.matmul(user_vecs, first.kernel[:dim]), training=training)  # (b, h0)
        c = self.drop[0](ops.matmul(item_vecs, first.kernel[dim:]), training=training)  # (s, h0)
        b, s = ops.shape(a)[0], ops.shape(c)[0]
        # The pairs as rows of one 2-D matrix (a 3-D dense layer is slower on CPU).
        h = ops.relu(a[:, None, :] + c[None, :, :] + first.bias)  # (b, s, h0)
        h = ops.reshape(h, (-1, a.shape[-1]))  # (b * s, h0)
        for dense in self.dense[1:]:
            h = dense(h)
        return ops.reshape(h, (b, s, self.sizes[-1]))  # (b, s, h_last)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {}
        for k, dense in enumerate(self.dense):
            out[f"{prefix}{k}_kernel"] = np.asarray(dense.kernel, np.float32)
            out[f"{prefix}{k}_bias"] = np.asarray(dense.bias, np.float32)
        return out


@keras.saving.register_keras_serializable("recsys")
class NCF(RecModel):
    """Neural collaborative filtering: embeddings concatenated, then dense layers.

    The "NCF" model of the Keras write-ups (He et al. 2017's MLP branch). For scoring, the first
    dense layer splits into a user part and an item part computed once each, not once per pair.
    """

    family = "ncf"

    def __init__(
        self, *args: Any, hidden: tuple[int, ...] = (128, 64), dropout: float = 0.2, **kw: Any
    ):
        super().__init__(*args, **kw)
        self.hidden, self.dropout = tuple(int(h) for h in hidden), float(dropout)

    def build(self, input_shape=None):
        self.user_emb = self._table("user_emb", self.n_users, self.dim)
        self.item_emb = self._table("item_emb", self.n_items, self.dim)
        self.side = self._side_table("side_emb", self.dim)
        self._build_tower(extra_out=0)
        self.built = True

    def _build_tower(self, extra_out: int) -> None:
        """The MLP over [user, item] (2 x dim wide) and one output unit over its last layer
        plus ``extra_out`` more inputs (NeuMF's GMF branch)."""
        self.mlp = _MLP(self.hidden, self.dropout, self.seed, name="mlp")
        self.out = layers.Dense(1, name="out")
        self.mlp.build((None, 2 * self.dim))
        self.out.build((None, extra_out + self.hidden[-1]))

    def _tower_arrays(self) -> dict[str, np.ndarray]:
        return {
            **self.mlp.arrays("mlp"),
            "out_kernel": np.asarray(self.out.kernel, np.float32),
            "out_bias": np.asarray(self.out.bias, np.float32),
        }

    def logit(self, inputs, training=False):
        u = self._lookup(self.user_emb, inputs[S.USER_IDX])  # (b, dim)
        v = self._item_vector(self.item_emb, self.side, inputs[S.ITEM_IDX])  # (b, dim)
        h = self.mlp(ops.concatenate([u, v], axis=-1), training=training)  # (b, hidden[-1])
        penalty = self.l2 * (ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))
        return self.out(h), penalty  # (b, 1), (b,)

    def cross(self, users, items, training=False):
        u = self._lookup(self.user_emb, users)  # (b, dim)
        v = self._items(self.item_emb, self.side, items)  # (s, dim)
        h = self.mlp.cross(u, v, training=training)  # (b, s, hidden[-1])
        return ops.squeeze(self.out(h), axis=-1)  # (b, s)

    def get_config(self):
        return {**super().get_config(), "hidden": list(self.hidden), "dropout": self.dropout}

    def export_arrays(self):
        return {
            **self._meta(),
            "user_factors": np.asarray(self.user_emb, np.float32),
            "item_factors": self._item_matrix(self.item_emb, self.side),
            **self._tower_arrays(),
        }


@keras.saving.register_keras_serializable("recsys")
class NeuMF(NCF):
    """NeuMF: a generalised-MF branch (element-wise product) and an MLP branch, fused.

    He et al. 2017; the GMF and MLP branches have their own embeddings, their last layers are
    concatenated into one output unit. Shares NCF's tower and settings.
    """

    family = "neumf"

    def build(self, input_shape=None):
        self.user_gmf = self._table("user_gmf", self.n_users, self.dim)
        self.item_gmf = self._table("item_gmf", self.n_items, self.dim)
        self.user_mlp = self._table("user_mlp", self.n_users, self.dim)
        self.item_mlp = self._table("item_mlp", self.n_items, self.dim)
        self.side = self._side_table("side_emb", self.dim)
        self._build_tower(extra_out=self.dim)
        self.built = True

    def logit(self, inputs, training=False):
        u_idx, i_idx = inputs[S.USER_IDX], inputs[S.ITEM_IDX]
        ug, vg = self._lookup(self.user_gmf, u_idx), self._lookup(self.item_gmf, i_idx)
        um = self._lookup(self.user_mlp, u_idx)
        vm = self._item_vector(self.item_mlp, self.side, i_idx)
        h = self.mlp(ops.concatenate([um, vm], axis=-1), training=training)  # (b, hidden[-1])
        logit = self.out(ops.concatenate([ug * vg, h], axis=-1))  # (b, 1)
        norms = [ops.sum(t * t, axis=-1) for t in (ug, vg, um, vm)]
        return logit, self.l2 * (norms[0] + norms[1] + norms[2] + norms[3])

    def cross(self, users, items, training=False):
        ug = self._lookup(self.user_gmf, users)  # (b, dim)
        vg = self.item_gmf.value if items is None else self._lookup(self.item_gmf, items)
        um = self._lookup(self.user_mlp, users)
        vm = self._items(self.item_mlp, self.side, items)  # (s, dim)
        h = self.mlp.cross(um, vm, training=training)  # (b, s, hidden[-1])
        w = self.out.kernel[:, 0]  # (dim + hidden[-1],)
        gmf = ops.matmul(ug * w[: self.dim], ops.transpose(vg))  # (b, s)
        return gmf + ops.matmul(h, w[self.dim :]) + self.out.bias[0]  # (b, s)

    def export_arrays(self):
        return {
            **self._meta(),
            "user_gmf": np.asarray(self.user_gmf, np.float32),
            "item_gmf": np.asarray(self.item_gmf, np.float32),
            "user_factors": np.asarray(self.user_mlp, np.float32),
            "item_factors": self._item_matrix(self.item_mlp, self.side),
            **self._tower_arrays(),
        }
