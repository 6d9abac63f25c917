"""The contract of every model family: the classic Keras recommenders of the MovieLens
write-ups, one base class.

Every model maps ``{"user_idx": (b,), "item_idx": (b,)}`` to a score of shape ``(b, 1)``: a
rating prediction (objective ``rating``, MSE) or a ranking logit (objective ``ranking``, a softmax
over candidate items, see ``recsys.train.ranking``). Families define three pieces:

* ``logit(inputs, training) -> (logit (b, 1), per_example_penalty (b,))`` for (user, item) pairs,
  where the penalty is the L2 norm of the rows this batch looked up: regularising only what a batch
  touches keeps the gradient of every table row-sparse (an L2 term on whole tables would rewrite
  them every step);
* ``cross(users, items, training) -> (b, s)``: the same logits for every user of a batch against a
  shared set of candidate items (all items, or sampled ones), computed as block matrix work;
* ``export_arrays`` (what the numpy scoring kernels need; scoring never imports TensorFlow);
* ``settings(tcfg)``: the family's own constructor arguments from the train config.

The output transform (``+ global mean`` or the range sigmoid for rating models, none for ranking
models) and the shared ``train_step`` live in ``RecModel``.

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
from keras import ops


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
        objective: str = "rating",
        ranking: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.objective = str(objective)
        # Ranking loss settings (recsys.train.ranking.RankingLoss fields); training only.
        self.ranking = dict(ranking or {})
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
        self._ranking_loss = None
        # Compile the step's pieces with XLA (set by the trainer; one replica only).
        self.xla = False
        self._compiled: dict[str, Any] = {}
        # Share of train rows per item, for the sampled softmax's log-Q correction; set by the
        # trainer, not saved (only training uses it).
        self.item_freq: np.ndarray | None = None

    # -- building blocks ------------------------------------------------------------------
    def _table(
        self, name: str, rows: int, dim: int, scale: float | None = None, trainable: bool = True
    ):
        init = keras.initializers.RandomNormal(
            stddev=self.init_scale if scale is None else scale, seed=self.seed + len(self.weights)
        )
        return self.add_weight(name=name, shape=(rows, dim), initializer=init, trainable=trainable)

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

    def _offset(self) -> float:
        """Constant added to the logit: the global mean for rating models, 0 for ranking."""
        return self.global_mean if self.objective == "rating" else 0.0

    def _output(self, logit):
        return logit + self._offset()

    # -- contract -------------------------------------------------------------------------
    @classmethod
    def settings(cls, tcfg: Any) -> dict[str, Any]:
        """The family's own constructor arguments from the ``TrainConfig`` (none here)."""
        return {}

    def logit(self, inputs, training: bool = False):
        raise NotImplementedError

    def cross(self, users, items, training: bool = False):
        raise NotImplementedError

    def forward(self, inputs, training: bool = False):
        logit, penalty = self.logit(inputs, training=training)
        return self._output(logit), penalty

    def call(self, inputs, training: bool = False):
        return self.forward(inputs, training=training)[0]

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            per_example, pred = self._per_example(x, y, self.optimizer.iterations.value)
            loss = tf.nn.compute_average_loss(per_example)
        grads = tape.gradient(loss, self.trainable_variables)
        self.island("apply", lambda g: self.optimizer.apply(g, self.trainable_variables))(grads)
        if pred is None:
            self.loss_tracker.update_state(loss)
            return self._step_logs({"loss": self.loss_tracker.result()})
        return self._update_metrics(x, y, pred, loss)

    def _step_logs(self, logs: dict[str, Any]) -> dict[str, Any]:
        """A step's logs; shaped (1,) under ``MultiWorkerMirroredStrategy``, where Keras (3.15)
        reduces them over the workers along axis 0, which a scalar lacks (they come back
        scalars)."""
        strategy = self.distribute_strategy
        if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            return logs
        return {name: tf.reshape(value, (1,)) for name, value in logs.items()}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras builds an unbuilt model from a first batch reduced over the replicas, a reduce
        that fails on a dict of inputs under ``MultiWorkerMirroredStrategy`` (Keras 3.15). Our
        models are built before ``fit``: only the optimiser is left to build."""
        if not all(layer.built for layer in self._flatten_layers()):
            return super()._maybe_symbolic_build(iterator, data_batch)
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def island(self, name: str, fn):
        """``fn`` XLA-compiled (once per ``name``) when ``self.xla``, else ``fn`` itself.

        With one replica the trainer sets ``xla`` and compiles the step as islands rather than as
        a whole: XLA fuses the elementwise work and updates table rows in place, but its CPU
        matmul is slower than TensorFlow's own (oneDNN), so a ranking loss keeps its large
        candidate matmul outside (``recsys.train.ranking``; docs/training-throughput.md).
        """
        if not self.xla:
            return fn
        if name not in self._compiled:
            self._compiled[name] = tf.function(fn, jit_compile=True)
        return self._compiled[name]

    def _per_example(self, x, y, step):
        """Per-example loss (b,) and the predictions (rating objective; None for ranking)."""
        if self.objective == "ranking":
            from recsys.train.ranking import RankingLoss

            if self._ranking_loss is None:
                self._ranking_loss = RankingLoss(**self.ranking, item_freq=self.item_freq)
            return self._ranking_loss(self, x, y[:, 0], step), None
        return self.island("rating", self._squared_error)(x, y)

    def _squared_error(self, x, y):
        pred, penalty = self.forward(x, training=True)  # (b, 1), (b,)
        return ops.squeeze(ops.square(pred - y), axis=-1) + penalty, pred

    def test_step(self, data):
        x, y = data[0], data[1]
        pred, penalty = self.forward(x, training=False)
        per_example = ops.squeeze(ops.square(pred - y), axis=-1) + penalty
        return self._update_metrics(x, y, pred, tf.nn.compute_average_loss(per_example))

    @property
    def metrics(self):
        if self.objective == "ranking":
            return [self.loss_tracker]
        return [self.loss_tracker, self.rmse_tracker]

    def _update_metrics(self, x, y, pred, loss):
        self.loss_tracker.update_state(loss)
        self.rmse_tracker.update_state(y, pred)
        return self._step_logs({m.name: m.result() for m in self.metrics})

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
            "objective": self.objective,
            "ranking": self.ranking,
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
            "objective": np.array(self.objective),
            "rating_min": np.float32(self.rating_min),
            "rating_max": np.float32(self.rating_max),
            "global_mean": np.float32(self.global_mean),
            # Added to every logit; ``sigmoid`` maps logit + offset into the rating range.
            "offset": np.float32(self._offset()),
            "sigmoid": np.bool_(False),
        }

    def _all_items(self, table, side):
        """Every item vector with side features folded in, as a tensor: (n_items, dim)."""
        vec = table.value
        feats, side_table = side
        if feats is not None:
            vec = vec + ops.matmul(feats.value, side_table)
        return vec

    def _items(self, table, side, idx):
        """Item vectors of ``idx`` (or of every item when ``idx`` is None): (s, dim)."""
        return self._all_items(table, side) if idx is None else self._item_vector(table, side, idx)
