"""The exported model: its numpy arrays (``arrays.npz``) and the kernels that score them.

Training writes it, evaluation, the gate and scoring read it, so it lives below all three and
never imports TensorFlow. A kernel scores a block of users against all items as dense matrix work;
which one a model's arrays take is its family's ``kernel`` (``recsys.families``), and the optional
parts (biases, NeuMF's GMF branch) are read from the arrays present:

* ``factor`` (``mf`` / ``biased-mf``): one matmul ``(b, dim) @ (dim, n_items)`` plus biases. The
  range sigmoid is monotone, so ``rank_scores`` skips it (rank on the logit); ``score_block``
  applies it. Ranking models (objective ``ranking``) have no sigmoid and no offset: their score is
  the logit.
* ``mlp`` (``ncf`` / ``neumf``): the first dense layer of the concat-MLP splits into a user part
  and an item part, ``[u, v] @ W = u @ W_u + v @ W_i``, each computed once per block (not once
  per pair); only the later layers run per pair, in sub-blocks that bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recsys.families import family

# The MLP kernels work on (users x items x hidden) tiles of at most MLP_TILE_FLOATS floats, at
# most MLP_ITEM_TILE items wide: small enough to stay in cache through the dense layers
# (measured in docs/tuning.md).
MLP_ITEM_TILE = 1024
MLP_TILE_FLOATS = 1 << 17


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|


@dataclass
class Scorer:
    """Scores from an exported model's arrays."""

    arrays: dict[str, np.ndarray]
    # Derived matrices built on first use (e.g. the bias-augmented item factors).
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> Scorer:
        with np.load(path, allow_pickle=False) as data:
            return cls({k: data[k] for k in data.files})

    @property
    def family(self) -> str:
        return str(self.arrays["family"])

    @property
    def kernel(self) -> str:
        """``factor`` or ``mlp``: how the family's arrays are scored."""
        return family(self.family).kernel

    @property
    def n_items(self) -> int:
        return int(self.arrays["item_factors"].shape[0])

    def _range(self, logit: np.ndarray) -> np.ndarray:
        lo, hi = float(self.arrays["rating_min"]), float(self.arrays["rating_max"])
        return lo + (hi - lo) * _sigmoid(logit)

    def _mlp_tail(self, h: np.ndarray) -> np.ndarray:
        """Dense layers 1.. of the MLP tower on pre-activations of layer 0 (overwritten):
        (..., hidden[-1])."""
        a = self.arrays
        np.maximum(h, 0.0, out=h)
        k = 1
        while f"mlp{k}_kernel" in a:
            h = h @ a[f"mlp{k}_kernel"]
            h += a[f"mlp{k}_bias"]
            np.maximum(h, 0.0, out=h)
            k += 1
        return h

    def _mlp_block(self, users: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """(b, n) scores of the MLP models for users x items (all items when None)."""
        a = self.arrays
        dim = a["user_factors"].shape[1]
        w0 = a["mlp0_kernel"]
        user_part = a["user_factors"][users] @ w0[:dim] + a["mlp0_bias"]  # (b, h0)
        if items is None:  # every item: the same for every block of users, built once
            if "mlp_items" not in self._cache:
                self._cache["mlp_items"] = np.ascontiguousarray(
                    a["item_factors"] @ w0[dim:], np.float32
                )
            item_part = self._cache["mlp_items"]  # (n, h0)
        else:
            item_part = a["item_factors"][items] @ w0[dim:]
        out_w, out_b = a["out_kernel"][:, 0], float(a["out_bias"][0])
        gmf = "item_gmf" in a
        if gmf:
            ig = a["item_gmf"] if items is None else a["item_gmf"][items]
            ug = a["user_gmf"][users]
            gmf_part = ug @ (ig * out_w[: ig.shape[1]]).T  # (b, n)
            out_w = out_w[ig.shape[1] :]
        n = item_part.shape[0]
        scores = np.empty((len(users), n), np.float32)
        for lo in range(0, n, MLP_ITEM_TILE):
            tile = item_part[lo : lo + MLP_ITEM_TILE]  # (t, h0)
            step = max(1, MLP_TILE_FLOATS // (tile.shape[0] * w0.shape[1]))
            for start in range(0, len(users), step):
                sl = slice(start, start + step)
                h = user_part[sl, None, :] + tile[None, :, :]  # (s, t, h0)
                scores[sl, lo : lo + tile.shape[0]] = self._mlp_tail(h) @ out_w + out_b
        if gmf:
            scores += gmf_part
        return scores + float(a["offset"])

    def rank_scores(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Scores whose order is the model's ranking (the logit for sigmoid models): (b, n)."""
        a = self.arrays
        users = np.asarray(users)
        if self.kernel == "mlp":
            return self._mlp_block(users, items)
        item_vecs = a["item_factors"] if items is None else a["item_factors"][items]
        s = a["user_factors"][users] @ item_vecs.T  # (b, n)
        if "item_bias" not in a:
            return s + a["offset"]
        item_bias = a["item_bias"] if items is None else a["item_bias"][items]
        return s + a["user_bias"][users, None] + item_bias[None, :] + a["offset"]

    @property
    def objective(self) -> str:
        return str(self.arrays.get("objective", "rating"))

    def order_scores(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item whose order *within each row* is the model's ranking: (b, n).

        Per-user constants (user bias, offset) do not change a row's order, so the factor
        models skip them, and the item bias rides in the matmul as one more factor column
        (``[u, 1] . [v, b_i]``): one pass over the block instead of three.
        """
        factors = self.order_factors(users)
        if factors is None:
            return self.rank_scores(users)
        u, items_t = factors
        return u @ items_t  # (b, n_items)

    def order_factors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(u (b, d), items_t (d, n_items))`` whose product is ``order_scores(users)``, for
        the factor models (``None`` for the MLP ones): lets a caller compute the block a tile
        of items at a time."""
        a = self.arrays
        if self.kernel != "factor":
            return None
        if "order_items" not in self._cache:
            items = a["item_factors"]
            if "item_bias" in a:
                items = np.hstack([items, a["item_bias"][:, None]])
            # (dim [+1], n_items)
            self._cache["order_items"] = np.ascontiguousarray(items.T, np.float32)
        u = np.asarray(a["user_factors"][np.asarray(users)], np.float32)  # (b, dim)
        if "item_bias" in a:
            u = np.hstack([u, np.ones((len(u), 1), np.float32)])
        return u, self._cache["order_items"]

    def score_block(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """Predicted ratings (rating models) or ranking logits of users x items: (b, n)."""
        s = self.rank_scores(users, items)
        return self._range(s) if bool(self.arrays["sigmoid"]) else s

    def predict(self, users: np.ndarray, items: np.ndarray, block: int = 65536) -> np.ndarray:
        """Predicted ratings of (user, item) pairs: (n,)."""
        users, items = np.asarray(users), np.asarray(items)
        out = np.empty(len(users), np.float32)
        a = self.arrays
        for start in range(0, len(users), block):
            u, i = users[start : start + block], items[start : start + block]
            if self.kernel == "factor":
                s = np.einsum("bd,bd->b", a["user_factors"][u], a["item_factors"][i])
                if "item_bias" in a:
                    s = s + a["user_bias"][u] + a["item_bias"][i]
                s = s + a["offset"]
                out[start : start + len(u)] = self._range(s) if bool(a["sigmoid"]) else s
            else:
                out[start : start + len(u)] = self._pair_mlp(u, i)
        return out

    def _pair_mlp(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        a = self.arrays
        dim = a["user_factors"].shape[1]
        w0 = a["mlp0_kernel"]
        h = a["user_factors"][u] @ w0[:dim] + a["item_factors"][i] @ w0[dim:] + a["mlp0_bias"]
        h = self._mlp_tail(h)
        out_w, out_b = a["out_kernel"][:, 0], float(a["out_bias"][0])
        if "item_gmf" in a:
            g = a["user_gmf"][u] * a["item_gmf"][i]
            return g @ out_w[: g.shape[1]] + h @ out_w[g.shape[1] :] + out_b + a["offset"]
        return h @ out_w + out_b + a["offset"]
