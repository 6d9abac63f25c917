"""The model family, one registry: ``MODELS[name](n_users, n_items, ...)``.

The contract every family follows (``logit``, ``cross``, ``export_arrays``) and the shared train
step are in ``recsys.train.base``; the factorisation models are here, the neural ones (NCF,
NeuMF) in ``recsys.train.neural``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from recsys import schema as S
from recsys.train.base import FAMILIES, RecModel, _logit
from recsys.train.neural import NCF, NeuMF

__all__ = ["FAMILIES", "MODELS", "MF", "NCF", "BiasedMF", "NeuMF", "RecModel", "fill_cold_rows"]


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


MODELS: dict[str, type[RecModel]] = {"mf": MF, "biased-mf": BiasedMF, "ncf": NCF, "neumf": NeuMF}


def fill_cold_rows(model: RecModel, user_idx: np.ndarray, item_idx: np.ndarray) -> dict[str, int]:
    """Give users and items without a training row the mean row of those with one.

    A user whose rows are all held out (most test users of a temporal split) would otherwise be
    scored through a row no gradient reached: random factors and a zero bias, which a rating model
    reads as "a user unlike any other". The mean trained row is the model's own average user:
    ``mu + b_i + (mean user) . v_i`` in the model's terms, so a cold user gets each item's
    average predicted rating (the item bias plus the part of it the factors carry, and the side
    features through ``v_i``), and a cold item likewise the average item of each user (with its
    own genres, which are data, not a row). Every user and item table of the family (embeddings,
    biases, NeuMF's two branches) is filled the same way, so Keras and the exported arrays agree.
    The rule is this run's training rows only: a row a warm start copied is replaced too when its
    user or item has none tonight.

    Args:
        model: A trained model (its tables are overwritten in place).
        user_idx: User index of every row it was trained on (train split, or every split).
        item_idx: Item index of those rows.

    Returns:
        ``{"users": cold users filled, "items": cold items filled}``.
    """
    from recsys.train.optim import is_table

    seen = {
        "user_": np.bincount(np.asarray(user_idx), minlength=model.n_users) > 0,
        "item_": np.bincount(np.asarray(item_idx), minlength=model.n_items) > 0,
    }
    for var in model.weights:
        name = var.name.split("/")[-1]
        side = "user_" if name.startswith("user_") else "item_" if name.startswith("item_") else ""
        if not side or not is_table(var) or seen[side].all() or not seen[side].any():
            continue
        value = np.array(var)  # (rows, width)
        value[~seen[side]] = value[seen[side]].mean(axis=0)
        var.assign(value)
    return {
        "users": int(np.count_nonzero(~seen["user_"])),
        "items": int(np.count_nonzero(~seen["item_"])),
    }
