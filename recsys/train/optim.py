"""A row-sparse optimiser for embedding tables (row-wise Adagrad or lazy Adam), Adam for the rest.

Keras 3's Adam and Adagrad update a whole embedding table every step (~50k ratings/s on
MovieLens-25M-sized tables); here a table's gradient (``tf.IndexedSlices``) is summed per row and
only those rows move. Row-wise Adagrad keeps one accumulator per row (the DLRM/TorchRec choice)
and suits the rating models, which were tuned with it; lazy Adam keeps Adam's moments per element
for the rows a batch touched, and leaves the small early gradients of the ranking softmax behind
where Adagrad crawls (docs/tuning.md). Works under ``MirroredStrategy`` (Keras reduces).
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

# Variables whose name starts with one of these are per-user / per-item tables: row-sparse.
TABLE_PREFIXES = ("user_", "item_")
DENSE_NAMES = ("item_features",)


def is_table(variable: Any) -> bool:
    name = variable.name.split("/")[-1]
    return name.startswith(TABLE_PREFIXES) and name not in DENSE_NAMES


def _group_rows(gradient: tf.IndexedSlices, n_rows: int):
    """A row-sparse gradient summed per row without ``tf.unique``, which XLA runs slower than
    the whole update (a sort; docs/tuning.md). The last entry of each row (found by a scatter-max
    of positions into a scratch vector of ``n_rows``) carries its row's sum; the others carry zeros.

    Returns ``(indices (n,), values (n, dim), first (n,) bool)``: ``values`` is the row's summed
    gradient where ``first`` and 0 elsewhere, so scatter-adds of anything masked by ``first``
    update each row exactly once.
    """
    indices = tf.cast(gradient.indices, tf.int32)
    positions = tf.range(tf.shape(indices)[0])
    owner = tf.tensor_scatter_nd_max(tf.fill([n_rows], -1), indices[:, None], positions)
    owner = tf.gather(owner, indices)  # (n,) the position that carries the row
    values = tf.math.unsorted_segment_sum(gradient.values, owner, tf.shape(indices)[0])
    return indices, values, tf.equal(owner, positions)


@keras.saving.register_keras_serializable("recsys")
class SparseTableOptimizer(keras.optimizers.Optimizer):
    """Row-sparse updates of the embedding tables (``table_method``: row-wise ``adagrad`` or lazy
    ``adam``), ordinary Adam on everything else.

    Args:
        learning_rate: step size of the tables.
        dense_learning_rate: Adam's step size for dense weights.
        initial_accumulator: starting value of each row's squared-gradient sum (as TF Adagrad).
    """

    def __init__(
        self,
        learning_rate: float = 0.05,
        dense_learning_rate: float = 1e-3,
        initial_accumulator: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        table_method: str = "adagrad",
        name: str = "sparse_table_optimizer",
        **kwargs: Any,
    ) -> None:
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if table_method not in ("adagrad", "adam"):
            raise ValueError(f"table_method must be adagrad or adam, got {table_method!r}")
        self.table_method = table_method
        self.dense_learning_rate = float(dense_learning_rate)
        self.initial_accumulator = float(initial_accumulator)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._slots: list[tuple[Any, ...]] = []
        # Decided here, by the variables' own names: under MirroredStrategy ``update_step`` gets
        # each replica's copy, named ``.../replica_1:0`` on all but the first, which ``is_table``
        # would take for a dense weight (lazy Adam then ran dense Adam at the dense rate there).
        self._tables = [is_table(var) for var in var_list]
        for var in var_list:
            if is_table(var) and len(var.shape) == 2 and self.table_method == "adagrad":
                acc = self.add_variable(
                    shape=(var.shape[0], 1),
                    dtype=var.dtype,
                    initializer=keras.initializers.Constant(self.initial_accumulator),
                    name=f"{var.name}_row_acc",
                )
                self._slots.append((acc,))
            else:
                m = self.add_variable_from_reference(var, "m")
                v = self.add_variable_from_reference(var, "v")
                self._slots.append((m, v))

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        slots, table = self._slots[index], self._tables[index]
        if len(slots) == 1:
            self._sparse_step(gradient, variable, slots[0], learning_rate)
        elif table and isinstance(gradient, tf.IndexedSlices):
            self._lazy_adam_step(gradient, variable, *slots, learning_rate)
        elif table:
            self._masked_adam_step(gradient, variable, *slots, learning_rate)
        else:
            self._adam_step(gradient, variable, *slots, self.dense_learning_rate)

    def _sparse_step(self, gradient, variable, acc, learning_rate):
        lr = tf.cast(learning_rate, variable.dtype)
        if not isinstance(gradient, tf.IndexedSlices):
            # A dense gradient (a full softmax touches every item row): the same update for every
            # row at once; rows with a zero gradient add nothing to their accumulator and do not
            # move, exactly as if they had been left out.
            self.assign_add(acc, tf.reduce_mean(tf.square(gradient), axis=1, keepdims=True))
            self.assign_sub(variable, gradient * (lr * tf.math.rsqrt(acc + 1e-12)))
            return
        indices, values, first = _group_rows(gradient, variable.shape[0])
        sq = tf.reduce_mean(tf.square(values), axis=1, keepdims=True)  # (n, 1), 0 off `first`
        self.assign_add(acc, tf.IndexedSlices(sq, indices))
        scale = tf.math.rsqrt(tf.gather(acc, indices) + 1e-12)  # (n, 1)
        self.assign_sub(variable, tf.IndexedSlices(values * (lr * scale), indices))

    def _alpha(self, learning_rate, dtype):
        step = tf.cast(self.iterations + 1, dtype)
        b1, b2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        return (
            tf.cast(learning_rate, dtype) * tf.sqrt(1 - tf.pow(b2, step)) / (1 - tf.pow(b1, step))
        )

    def _adam_step(self, gradient, variable, m, v, learning_rate):
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        b1, b2 = self.beta_1, self.beta_2
        self.assign_add(m, (gradient - m) * (1 - b1))
        self.assign_add(v, (tf.square(gradient) - v) * (1 - b2))
        alpha = self._alpha(learning_rate, variable.dtype)
        self.assign_sub(variable, alpha * m / (tf.sqrt(v) + self.epsilon))

    def _masked_adam_step(self, gradient, variable, m, v, learning_rate):
        """Lazy Adam for a dense table gradient (a full softmax, or the cross-replica sum that
        ``MirroredStrategy`` may densify): rows whose gradient is all zero keep their moments
        and do not move, exactly as the sparse path leaves untouched rows."""
        touched = tf.reduce_any(gradient != 0, axis=1, keepdims=True)  # (rows, 1)
        b1, b2 = self.beta_1, self.beta_2
        m_new = tf.where(touched, m * b1 + gradient * (1 - b1), m)
        v_new = tf.where(touched, v * b2 + tf.square(gradient) * (1 - b2), v)
        self.assign(m, m_new)
        self.assign(v, v_new)
        alpha = self._alpha(learning_rate, variable.dtype)
        step = alpha * m_new / (tf.sqrt(v_new) + self.epsilon)
        self.assign_sub(variable, tf.where(touched, step, tf.zeros_like(step)))

    def _lazy_adam_step(self, gradient, variable, m, v, learning_rate):
        """Adam on the rows the batch touched; the other rows and their moments stay as they are."""
        indices, values, first = _group_rows(gradient, variable.shape[0])
        b1, b2 = self.beta_1, self.beta_2
        m_old, v_old = tf.gather(m, indices), tf.gather(v, indices)  # (n, dim)
        m_rows = m_old * b1 + values * (1 - b1)
        v_rows = v_old * b2 + tf.square(values) * (1 - b2)
        # Each row moves once, through the first entry of its group; the others add zeros.
        keep = first[:, None]
        zero = tf.zeros_like(m_rows)
        self.assign_add(m, tf.IndexedSlices(tf.where(keep, m_rows - m_old, zero), indices))
        self.assign_add(v, tf.IndexedSlices(tf.where(keep, v_rows - v_old, zero), indices))
        alpha = self._alpha(learning_rate, variable.dtype)
        step = tf.where(keep, alpha * m_rows / (tf.sqrt(v_rows) + self.epsilon), zero)
        self.assign_sub(variable, tf.IndexedSlices(step, indices))

    def get_config(self):
        return {
            **super().get_config(),
            "dense_learning_rate": self.dense_learning_rate,
            "initial_accumulator": self.initial_accumulator,
            "table_method": self.table_method,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


# The class's first name: models saved with it (``recsys>SparseRowAdagrad``) still load.
SparseRowAdagrad = SparseTableOptimizer
keras.saving.get_custom_objects()["recsys>SparseRowAdagrad"] = SparseTableOptimizer
