"""``ncf``: neural collaborative filtering, embeddings concatenated into a dense tower."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers, ops

from recsys import schema as S
from recsys.train.models.base import RecModel
from recsys.train.models.mlp import MLP


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

    @classmethod
    def settings(cls, tcfg: Any) -> dict[str, Any]:
        return {"hidden": tuple(int(h) for h in tcfg.hidden.split(",")), "dropout": tcfg.dropout}

    def build(self, input_shape=None):
        self.user_emb = self._table("user_emb", self.n_users, self.dim)
        self.item_emb = self._table("item_emb", self.n_items, self.dim)
        self.side = self._side_table("side_emb", self.dim)
        self._build_tower(extra_out=0)
        self.built = True

    def _build_tower(self, extra_out: int) -> None:
        """The MLP over [user, item] (2 x dim wide) and one output unit over its last layer
        plus ``extra_out`` more inputs (NeuMF's GMF branch)."""
        self.mlp = MLP(self.hidden, self.dropout, self.seed, name="mlp")
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
