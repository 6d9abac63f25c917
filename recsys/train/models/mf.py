"""``mf``: matrix factorisation, a user vector dotted with an item vector."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from recsys import schema as S
from recsys.train.models.base import RecModel


@keras.saving.register_keras_serializable("recsys")
class MF(RecModel):
    """Matrix factorisation: score = user vector . item vector (+ the global mean for ratings).

    From the Keras MovieLens write-ups ("dot product of user and item embeddings"); the constant
    global mean offset lets small random factors start at a sensible rating prediction.
    """

    family = "mf"

    def build(self, input_shape=None):
        self.user_emb = self._table("user_emb", self.n_users, self.dim)
        self.item_emb = self._table("item_emb", self.n_items, self.dim)
        self.side = self._side_table("side_emb", self.dim)
        self.built = True

    def logit(self, inputs, training=False):
        u = self._lookup(self.user_emb, inputs[S.USER_IDX])  # (b, dim)
        return self.pair_logit(u, inputs[S.ITEM_IDX])

    def pair_logit(self, u, items):
        """Logit (b, 1) and penalty (b,) of user vectors ``u`` (b, dim) already looked up."""
        v = self._item_vector(self.item_emb, self.side, items)  # (b, dim)
        dot = ops.sum(u * v, axis=-1, keepdims=True)  # (b, 1)
        return dot, self.l2 * (ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))  # (b,)

    def cross(self, users, items, training=False):
        u, v, _ = self.cross_factors(users, items, training)
        return ops.matmul(u, ops.transpose(v))  # (b, s)

    def cross_factors(self, users, items, training=False):
        """``cross = u @ v.T (+ item term)``: (b, dim), (s, dim), None."""
        u = self._lookup(self.user_emb, users)  # (b, dim)
        return u, self._items(self.item_emb, self.side, items), None  # (s, dim)

    def export_arrays(self):
        return {
            **self._meta(),
            "user_factors": np.asarray(self.user_emb, np.float32),
            "item_factors": self._item_matrix(self.item_emb, self.side),
        }
