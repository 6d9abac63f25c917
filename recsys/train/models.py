"""The model family: the classic Keras recommenders of the MovieLens write-ups, one contract.

Every model maps ``{"user_idx": (b,), "item_idx": (b,)}`` to a rating prediction of shape
``(b, 1)`` and exposes ``forward(inputs, training) -> (prediction, per_example_penalty)``, where the
penalty is the L2 norm of the rows this batch looked up: regularising only what a batch touches
keeps the gradient of every table row-sparse (an L2 term on whole tables would rewrite them every
step). The shared ``train_step`` lives in ``RecModel``; families only define ``forward`` and
``export_arrays`` (what the numpy scoring kernels need; scoring never imports TensorFlow).

Output shape ``(b, 1)`` is deliberate: Keras 3.15 skips its 1/replicas loss scaling when a model's
output is ``(b,)``, which silently doubles the step on two replicas. The loss here is averaged with
``tf.nn.compute_average_loss`` over the global batch anyway, so both are safe.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from recsys import schema as S

FAMILIES = ("mf", "biased-mf", "ncf", "neumf")


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class RecModel(keras.Model):
    """Base class: embeddings, side features, the range transform and the sparse train step."""

    family = ""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int = 64,
        l2: float = 0.05,
        rating_min: float = 1.0,
        rating_max: float = 5.0,
        global_mean: float = 3.5,
        item_features: Any = None,
        n_features: int = 0,
        init_scale: float = 0.05,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.dim = int(n_users), int(n_items), int(dim)
        self.l2 = float(l2)
        self.rating_min, self.rating_max = float(rating_min), float(rating_max)
        self.global_mean = float(global_mean)
        self.init_scale = float(init_scale)
        self.seed = int(seed)
        # Side features come as a matrix when training; a loaded model gets their width only
        # (the values are a saved, non-trainable weight).
        features = None if item_features is None else np.asarray(item_features, np.float32)
        self.n_features = int(n_features) if features is None else int(features.shape[1])
        if features is None and self.n_features:
            features = np.zeros((self.n_items, self.n_features), np.float32)
        self._features_init = features
        # Own trackers instead of compiled metrics: Keras builds compiled metrics by running the
        # model on one batch, which fails on a multi-replica (PerReplica) batch.
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.rmse_tracker = keras.metrics.RootMeanSquaredError(name="rmse")

    # -- building blocks ------------------------------------------------------------------
    def _table(self, name: str, rows: int, dim: int, scale: float | None = None):
        init = keras.initializers.RandomNormal(
            stddev=self.init_scale if scale is None else scale, seed=self.seed + len(self.weights)
        )
        return self.add_weight(name=name, shape=(rows, dim), initializer=init, trainable=True)

    def _side_table(self, name: str, dim: int):
        """Item side features (e.g. genres, multi-hot rows normalised to sum 1) x a small table.

        The feature matrix is a non-trainable weight so it is saved with the model; the learned
        part is ``(n_features, dim)``, dense and tiny.
        """
        if not self.n_features:
            return None, None
        feats = self.add_weight(
            name="item_features",
            shape=(self.n_items, self.n_features),
            initializer=keras.initializers.Constant(self._features_init),
            trainable=False,
        )
        return feats, self._table(name, self.n_features, dim)

    @staticmethod
    def _lookup(table, idx):
        """Rows of a table: (b, dim). Gathers from the resource variable itself (a sparse read)
        rather than from a full copy of the table, which a tensor conversion would make."""
        return tf.gather(table.value, idx)

    def _item_vector(self, table, side, idx):
        """Item embedding plus its side-feature embedding: (b, dim)."""
        vec = self._lookup(table, idx)
        feats, side_table = side
        if feats is not None:
            vec = vec + ops.matmul(self._lookup(feats, idx), side_table)
        return vec

    def _to_range(self, logit):
        """Sigmoid scaled to the rating range (monotone: ranking can use the logit)."""
        return self.rating_min + (self.rating_max - self.rating_min) * ops.sigmoid(logit)

    # -- contract -------------------------------------------------------------------------
    def forward(self, inputs, training: bool = False):
        raise NotImplementedError

    def call(self, inputs, training: bool = False):
        return self.forward(inputs, training=training)[0]

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            pred, penalty = self.forward(x, training=True)  # (b, 1), (b,)
            per_example = ops.squeeze(ops.square(pred - y), axis=-1) + penalty
            loss = tf.nn.compute_average_loss(per_example)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._update_metrics(x, y, pred, loss)

    def test_step(self, data):
        x, y = data[0], data[1]
        pred, penalty = self.forward(x, training=False)
        per_example = ops.squeeze(ops.square(pred - y), axis=-1) + penalty
        return self._update_metrics(x, y, pred, tf.nn.compute_average_loss(per_example))

    @property
    def metrics(self):
        return [self.loss_tracker, self.rmse_tracker]

    def _update_metrics(self, x, y, pred, loss):
        self.loss_tracker.update_state(loss)
        self.rmse_tracker.update_state(y, pred)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self) -> dict[str, Any]:
        return {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "dim": self.dim,
            "l2": self.l2,
            "rating_min": self.rating_min,
            "rating_max": self.rating_max,
            "global_mean": self.global_mean,
            "init_scale": self.init_scale,
            "seed": self.seed,
            "n_features": self.n_features,
        }

    def export_arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _item_matrix(self, table, side) -> np.ndarray:
        """All item vectors with side features folded in: (n_items, dim)."""
        out = np.asarray(table, np.float32)
        feats, side_table = side
        if feats is not None:
            out = out + np.asarray(feats) @ np.asarray(side_table)
        return out.astype(np.float32)

    def _meta(self) -> dict[str, np.ndarray]:
        return {
            "family": np.array(self.family),
            "rating_min": np.float32(self.rating_min),
            "rating_max": np.float32(self.rating_max),
            "global_mean": np.float32(self.global_mean),
        }


@keras.saving.register_keras_serializable("recsys")
class MF(RecModel):
    """Matrix factorisation: rating = global mean + user vector . item vector.

    From the Keras MovieLens write-ups ("dot product of user and item embeddings"); the constant
    global mean offset lets small random factors start at a sensible prediction.
    """

    family = "mf"

    def build(self, input_shape=None):
        self.user_emb = self._table("user_emb", self.n_users, self.dim)
        self.item_emb = self._table("item_emb", self.n_items, self.dim)
        self.side = self._side_table("side_emb", self.dim)
        self.built = True

    def forward(self, inputs, training=False):
        u = self._lookup(self.user_emb, inputs[S.USER_IDX])  # (b, dim)
        v = self._item_vector(self.item_emb, self.side, inputs[S.ITEM_IDX])  # (b, dim)
        dot = ops.sum(u * v, axis=-1, keepdims=True)  # (b, 1)
        penalty = self.l2 * (ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))  # (b,)
        return dot + self.global_mean, penalty

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
    into the rating range, which the write-up found to help RMSE.
    """

    family = "biased-mf"

    def __init__(self, *args: Any, sigmoid: bool = False, bias_l2: float = 0.01, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sigmoid = bool(sigmoid)
        self.bias_l2 = float(bias_l2)

    def build(self, input_shape=None):
        self.user_emb = self._table("user_emb", self.n_users, self.dim)
        self.item_emb = self._table("item_emb", self.n_items, self.dim)
        self.user_bias = self._table("user_bias", self.n_users, 1, scale=0.0)
        self.item_bias = self._table("item_bias", self.n_items, 1, scale=0.0)
        self.side = self._side_table("side_emb", self.dim)
        self.built = True

    def _offset(self) -> float:
        if not self.sigmoid:
            return self.global_mean
        span = self.rating_max - self.rating_min
        return _logit((self.global_mean - self.rating_min) / span)

    def forward(self, inputs, training=False):
        u_idx, i_idx = inputs[S.USER_IDX], inputs[S.ITEM_IDX]
        u = self._lookup(self.user_emb, u_idx)  # (b, dim)
        v = self._item_vector(self.item_emb, self.side, i_idx)  # (b, dim)
        bu = self._lookup(self.user_bias, u_idx)  # (b, 1)
        bi = self._lookup(self.item_bias, i_idx)  # (b, 1)
        logit = ops.sum(u * v, axis=-1, keepdims=True) + bu + bi + self._offset()  # (b, 1)
        pred = self._to_range(logit) if self.sigmoid else logit
        penalty = self.l2 * (ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))
        penalty = penalty + self.bias_l2 * ops.squeeze(bu * bu + bi * bi, axis=-1)
        return pred, penalty

    def get_config(self):
        return {**super().get_config(), "sigmoid": self.sigmoid, "bias_l2": self.bias_l2}

    def export_arrays(self):
        return {
            **self._meta(),
            "user_factors": np.asarray(self.user_emb, np.float32),
            "item_factors": self._item_matrix(self.item_emb, self.side),
            "user_bias": np.asarray(self.user_bias, np.float32)[:, 0],
            "item_bias": np.asarray(self.item_bias, np.float32)[:, 0],
            "offset": np.float32(self._offset()),
            "sigmoid": np.bool_(self.sigmoid),
        }


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

    def forward(self, inputs, training=False):
        u = self._lookup(self.user_emb, inputs[S.USER_IDX])  # (b, dim)
        v = self._item_vector(self.item_emb, self.side, inputs[S.ITEM_IDX])  # (b, dim)
        h = self.mlp(ops.concatenate([u, v], axis=-1), training=training)  # (b, hidden[-1])
        pred = self.out(h) + self.global_mean  # (b, 1)
        penalty = self.l2 * (ops.sum(u * u, axis=-1) + ops.sum(v * v, axis=-1))
        return pred, penalty

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

    def forward(self, inputs, training=False):
        u_idx, i_idx = inputs[S.USER_IDX], inputs[S.ITEM_IDX]
        ug, vg = self._lookup(self.user_gmf, u_idx), self._lookup(self.item_gmf, i_idx)
        um = self._lookup(self.user_mlp, u_idx)
        vm = self._item_vector(self.item_mlp, self.side, i_idx)
        h = self.mlp(ops.concatenate([um, vm], axis=-1), training=training)  # (b, hidden[-1])
        pred = self.out(ops.concatenate([ug * vg, h], axis=-1)) + self.global_mean  # (b, 1)
        norms = [ops.sum(t * t, axis=-1) for t in (ug, vg, um, vm)]
        return pred, self.l2 * (norms[0] + norms[1] + norms[2] + norms[3])

    def export_arrays(self):
        return {
            **self._meta(),
            "user_gmf": np.asarray(self.user_gmf, np.float32),
            "item_gmf": np.asarray(self.item_gmf, np.float32),
            "user_factors": np.asarray(self.user_mlp, np.float32),
            "item_factors": self._item_matrix(self.item_mlp, self.side),
            **self._tower_arrays(),
        }


MODELS: dict[str, type[RecModel]] = {"mf": MF, "biased-mf": BiasedMF, "ncf": NCF, "neumf": NeuMF}
