"""``neumf``: a generalised-MF branch and an MLP branch fused (He et al. 2017)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from recsys import schema as S
from recsys.train.models.ncf import NCF


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
