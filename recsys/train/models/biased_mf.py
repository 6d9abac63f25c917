"""``biased-mf``: matrix factorisation with user and item biases (the default family)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from recsys import schema as S
from recsys.train.models.base import RecModel, _logit


@keras.saving.register_keras_serializable("recsys")
class BiasedMF(RecModel):
    """Biased MF: dot + user bias + item bias + global mean, optionally through a range sigmoid.

    The "MF with biases" model of the Keras write-ups; with ``sigmoid=True`` the output is squashed
    into the rating range, which the write-up found to help RMSE. Under the ranking objective the
    item bias carries popularity and the user bias is unused (a softmax over one user's items is
    blind to a per-user constant), and there is no sigmoid: the score is the logit.
    """

    family = "biased-mf"

    def __init__(self, *args: Any, sigmoid: bool = False, bias_l2: float = 0.01, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sigmoid = bool(sigmoid) and self.objective == "rating"
        self.bias_l2 = float(bias_l2)

    @classmethod
    def settings(cls, tcfg: Any) -> dict[str, Any]:
        return {"sigmoid": tcfg.sigmoid, "bias_l2": tcfg.bias_l2}

    def build(self, input_shape=None):
        self.user_emb = self._table("user_emb", self.n_users, self.dim)
        self.item_emb = self._table("item_emb", self.n_items, self.dim)
        # A softmax over one user's items cannot see a per-user constant: under the ranking
        # objective the user bias would only collect float noise (which Adam blows up), so it
        # stays a frozen zero there.
        rating = self.objective == "rating"
        self.user_bias = self._table("user_bias", self.n_users, 1, scale=0.0, trainable=rating)
        self.item_bias = self._table("item_bias", self.n_items, 1, scale=0.0)
        self.side = self._side_table("side_emb", self.dim)
        self.built = True

    def _offset(self) -> float:
        if not self.sigmoid:
            return super()._offset()
        span = self.rating_max - self.rating_min
        return _logit((self.global_mean - self.rating_min) / span)

    def _output(self, logit):
        logit = logit + self._offset()
        return self._to_range(logit) if self.sigmoid else logit

    def logit(self, inputs, training=False):
        u_idx = inputs[S.USER_IDX]
        logit, penalty = self.pair_logit(self._lookup(self.user_emb, u_idx), inputs[S.ITEM_IDX])
        bu = self._lookup(self.user_bias, u_idx)  # (b, 1)
        return logit + bu, penalty + self.bias_l2 * ops.squeeze(bu * bu, axis=-1)

    def pair_logit(self, u, items):
        """Logit (b, 1) and penalty (b,) of user vectors ``u`` (b, dim) already looked up,
        without the user bias (as ``cross_factors``: frozen at zero under the ranking
        objective, the only user of this split)."""
        v = self._item_vector(self.item_emb, self.side, items)  # (b, dim)
        bi = self._lookup(self.item_bias, items)  # (b, 1)
        logit = ops.sum(u * v, axis=-1, keepdims=True) + bi  # (b, 1)
        penalty = self.l2 * (ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))
        return logit, penalty + self.bias_l2 * ops.squeeze(bi * bi, axis=-1)

    def cross(self, users, items, training=False):
        u, v, bi = self.cross_factors(users, items, training)
        bu = self._lookup(self.user_bias, users)  # (b, 1)
        return ops.matmul(u, ops.transpose(v)) + bu + bi[None, :]  # (b, s)

    def cross_factors(self, users, items, training=False):
        """``cross = u @ v.T + item bias (+ user bias)``: (b, dim), (s, dim), (s,).

        The user bias is left out: it is frozen at zero under the ranking objective, the only
        user of this split (a softmax over one user's items cannot see it).
        """
        u = self._lookup(self.user_emb, users)  # (b, dim)
        v = self._items(self.item_emb, self.side, items)  # (s, dim)
        bi = self.item_bias.value if items is None else self._lookup(self.item_bias, items)
        return u, v, bi[:, 0]

    def get_config(self):
        return {**super().get_config(), "sigmoid": self.sigmoid, "bias_l2": self.bias_l2}

    def export_arrays(self):
        return {
            **self._meta(),
            "user_factors": np.asarray(self.user_emb, np.float32),
            "item_factors": self._item_matrix(self.item_emb, self.side),
            "user_bias": np.asarray(self.user_bias, np.float32)[:, 0],
            "item_bias": np.asarray(self.item_bias, np.float32)[:, 0],
            "sigmoid": np.bool_(self.sigmoid),
        }
