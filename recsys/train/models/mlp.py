"""The dense ReLU tower of the neural families (``ncf``, ``neumf``)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops


class MLP(layers.Layer):
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
        # than the layer itself (docs/tuning.md), and every pair of a user shares
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
