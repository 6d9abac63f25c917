"""The ranking objective: learn which items a user chose over the rest of the catalogue.

The product is a top-N list over every unseen item, so the model is trained the way it is used:
for each (user, chosen item) row, a softmax over candidate items must put the chosen one first.

* **Full softmax** (no ``negatives``, no ``in_batch``): the candidates are all items. Exact, and
  on MovieLens 100K (stratified 75/25 protocol, ``benchmarks/ml100k_ranking.py``) the best of
  what we measured.
  Its cost per row is ``n_items x dim``, so the trainer uses it when ``n_train x n_items`` is small
  (MovieLens 100K, 1M, latest-small).
* **Sampled softmax** (``negatives > 0``): the candidates are the chosen item, ``in_batch`` items
  chosen by other rows of the batch (a sample that follows popularity) and ``negatives`` items drawn
  uniformly from the catalogue, shared by the whole batch, so one matmul scores them all. Every
  logit is corrected by ``- log Q(item)``, the expected number of times the item is in the sample
  (Yi et al. 2019, "Sampling-bias-corrected neural modeling"; mixed negatives as in Yi et al.
  2020): without it popular items, over-represented among in-batch negatives, are pushed down.
  Candidates equal to a row's own chosen item ("accidental hits") are masked.
* **BPR** (``loss == "bpr"``): ``-log sigmoid(s(u, i) - s(u, j))`` with one uniform negative per
  row. Kept for comparison: on MovieLens 100K it ranks below the full softmax (docs/tuning.md).

**User groups** (``group > 1``): the input puts each user's rows side by side in runs of ``group``
(``recsys.train.data``), so a batch of ``b`` rows holds ``b / group`` users. The factor models then
score the candidates once per user, not once per row: the candidate matmul and the softmax
normaliser shrink ``group``-fold, and the loss of every row is unchanged (each row's softmax is its
user's candidate sum with the hits swapped for its own chosen item). A run shorter than ``group``
is padded with rows marked by a NaN rating, which weigh 0.

Rows can be filtered by rating (``min_rating``: only ratings at or above it count as chosen) or
weighted by it (``rating_weights``: the rating over the mean rating). Implicit logs (every rating
1.0) train as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from keras import ops

from recsys import schema as S
from recsys.errors import RecsysError

# The loss of a masked candidate: far below any real logit, finite so no NaN can appear.
MASKED = -1e9


def item_frequencies(items: np.ndarray, n_items: int) -> np.ndarray:
    """Share of rows per item, ``(n_items,)`` summing to 1: how in-batch negatives are drawn."""
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def check_positives(ratings: np.ndarray, min_rating: float, where: str) -> int:
    """Number of train rows that count as choices; none is an error in one sentence."""
    if math.isnan(min_rating):
        n = int(ratings.size)
    else:
        n = int(np.count_nonzero(ratings >= min_rating))
    if n == 0:
        top = f"{float(ratings.max()):g}" if ratings.size else "none"
        raise RecsysError(
            f"train.min_rating={min_rating:g} leaves no train row of {where} as a positive "
            f"(highest rating: {top}); lower it or leave it unset"
        )
    return n


@dataclass
class RankingLoss:
    """Per-row ranking loss of a ``RecModel`` (see the module docstring).

    Args:
        loss: ``softmax`` or ``bpr``.
        negatives: Uniform catalogue negatives shared by a batch.
        in_batch: Other rows' chosen items used as negatives (first ``in_batch`` rows of the batch).
            With neither, the softmax runs over all items (exact).
        item_freq: ``(n_items,)`` share of train rows per item (sums to 1): the sampling
            probability of in-batch negatives, for the log-Q correction.
        min_rating: Rows rated below this are not positives (weight 0); NaN = every row counts.
        rating_weights: Weight each row by its rating over ``mean_rating``.
        mean_rating: The train mean rating (for ``rating_weights``).
        seed: Seeds the negative sampler (with the step number and replica).
        group: Rows per user run of the batch (see the module docstring); 1: rows in any order.
    """

    loss: str = "softmax"
    negatives: int = 0
    in_batch: int = 0
    item_freq: list[float] | np.ndarray | None = None
    min_rating: float = float("nan")
    rating_weights: bool = False
    mean_rating: float = 1.0
    seed: int = 0
    group: int = 1

    def __post_init__(self) -> None:
        # Kept as numpy: a tensor made while tracing one step function cannot be used by the next.
        self._log_freq = None
        if self.item_freq is not None:
            freq = np.asarray(self.item_freq, np.float64)
            self._log_freq = np.log(np.maximum(freq, 1e-12)).astype(np.float32)

    def weights(self, rating):
        """Per-row weight (b,) from the ratings (b,); 0 for the padding of user runs (NaN)."""
        w = tf.ones_like(rating)
        if not math.isnan(self.min_rating):
            w = tf.where(rating >= self.min_rating, w, tf.zeros_like(w))
        if self.rating_weights:
            w = w * rating / self.mean_rating
        if self.group > 1:
            w = tf.where(tf.math.is_nan(rating), tf.zeros_like(w), w)
        return w

    def _seed(self, step):
        ctx = tf.distribute.get_replica_context()
        replica = 0 if ctx is None else ctx.replica_id_in_sync_group
        base = tf.cast(self.seed * 1009, tf.int64) + tf.cast(replica, tf.int64)
        return tf.stack([base, tf.cast(step, tf.int64)])

    def __call__(self, model, x, rating, step):
        """Per-row loss (b,) including the model's L2 penalty, zero for non-positive rows."""
        weight = self.weights(rating)
        sampled = self.loss != "bpr" and (self.negatives or self.in_batch)
        if sampled and hasattr(model, "cross_factors"):
            per_row = self._factored(model, x, step)
        else:
            per_row = model.island("ranking", lambda x, step: self._per_row(model, x, step))(
                x, step
            )
        return weight * per_row

    def _per_row(self, model, x, step):
        users, items = x[S.USER_IDX], x[S.ITEM_IDX]
        pos, penalty = model.logit(x, training=True)  # (b, 1), (b,)
        if self.loss == "bpr":
            neg_items = tf.random.stateless_uniform(
                tf.shape(items), self._seed(step), 0, model.n_items, dtype=tf.int32
            )
            neg, _ = model.logit({S.USER_IDX: users, S.ITEM_IDX: neg_items}, training=True)
            per_row = -tf.math.log_sigmoid(ops.squeeze(pos - neg, axis=-1))  # (b,)
        elif self.negatives == 0 and self.in_batch == 0:
            logits = model.cross(users, None, training=True)  # (b, n_items)
            per_row = tf.nn.sparse_softmax_cross_entropy_with_logits(items, logits)
        else:
            logits = self._sampled_logits(model, users, items, pos, step)  # (b, 1 + c)
            per_row = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.zeros_like(items), logits)
        return per_row + penalty

    def _factored(self, model, x, step):
        """The sampled softmax of a factor model, scored once per user run of the batch.

        Same loss as ``_sampled_logits``: the gathers and the softmax run as XLA islands
        (``model.island``), the ``(b / group, c)`` candidate matmul between them as TensorFlow's
        own kernel, faster than XLA's on CPU (docs/tuning.md).
        """
        u, cand_vec, col, pos, penalty, hits = model.island(
            "operands", lambda x, step: self._operands(model, x, step)
        )(x, step)
        scores = tf.matmul(u, cand_vec, transpose_b=True)  # (g, c)
        softmax = model.island("softmax", self._grouped_softmax)
        return softmax(scores, col, pos, hits) + penalty

    def _operands(self, model, x, step):
        users, items = x[S.USER_IDX], x[S.ITEM_IDX]  # (b,)
        batch = tf.shape(items)[0]
        cand = self._candidates(items, model.n_items, step)  # (c,)
        # Every run shares its first row's user: look the users up once per run.
        lead = tf.reshape(users, [-1, self.group])[:, 0]  # (g,)
        u, cand_vec, item_term = model.cross_factors(lead, cand, training=True)
        pos, penalty = model.pair_logit(tf.repeat(u, self.group, axis=0), items)  # (b, 1), (b,)
        log_q = self._log_q(cand, batch, model.n_items)
        col = -log_q if item_term is None else item_term - log_q  # (c,)
        pos = pos[:, 0] - self._log_q(items, batch, model.n_items)  # (b,)
        # How often each row's chosen item is among the candidates (accidental hits): (b,)
        hits = tf.gather(
            tf.math.unsorted_segment_sum(tf.ones_like(log_q), cand, model.n_items), items
        )
        return u, cand_vec, col, pos, penalty, hits

    def _grouped_softmax(self, scores, col, pos, hits):
        """Cross-entropy of each chosen item against [itself, its user's candidates] (b,).

        A row's normaliser is its user's sum over the candidates (``scores`` (g, c), once per
        run) with its accidental hits, whose corrected score equals the row's own ``pos``,
        replaced by one copy of ``pos``: the same loss as masking the hits.
        """
        scores = scores + col[None, :]  # (g, c)
        top = tf.stop_gradient(tf.reduce_max(scores, axis=1))  # (g,)
        total = tf.reduce_sum(tf.exp(scores - top[:, None]), axis=1)  # (g,)
        top, total = tf.repeat(top, self.group), tf.repeat(total, self.group)  # (b,)
        shift = tf.stop_gradient(tf.maximum(top, pos))  # (b,)
        total = total * tf.exp(top - shift) + (1.0 - hits) * tf.exp(pos - shift)
        return tf.math.log(tf.maximum(total, 1e-30)) + shift - pos

    def _candidates(self, items, n_items, step):
        """[the chosen items of the first ``in_batch`` runs, ``negatives`` uniform items]: (c,).

        One item per user run: each is a row drawn as the train rows are, so the sample follows
        item frequency (what ``_log_q`` assumes) whatever ``group`` is.
        """
        lead = items if self.group == 1 else tf.reshape(items, [-1, self.group])[:, 0]
        cand = [lead[: self.in_batch]] if self.in_batch else []  # (m,)
        if self.negatives:
            cand.append(
                tf.random.stateless_uniform(
                    [self.negatives], self._seed(step), 0, n_items, dtype=tf.int32
                )
            )
        return tf.concat(cand, axis=0)

    def _log_q(self, idx, batch, n_items):
        """Log of each item's expected count in the sample: in-batch rows draw items by
        frequency, uniform draws with probability negatives / n_items each."""
        q = tf.fill(tf.shape(idx), tf.constant(self.negatives / n_items, tf.float32))
        if self.in_batch and self._log_freq is not None:
            m = tf.cast(tf.minimum(batch // self.group, self.in_batch), tf.float32)
            q = q + m * tf.exp(tf.gather(tf.constant(self._log_freq), idx))
        return tf.math.log(q)

    def _sampled_logits(self, model, users, items, pos, step):
        """Logits of [chosen item, in-batch items, uniform items], log-Q corrected: (b, 1 + c)."""
        batch, n_items = tf.shape(items)[0], model.n_items
        cand = self._candidates(items, n_items, step)  # (c,)
        scores = model.cross(users, cand, training=True) - self._log_q(cand, batch, n_items)[None]
        hit = tf.equal(items[:, None], cand[None, :])  # (b, c) accidental hits
        scores = tf.where(hit, tf.constant(MASKED, scores.dtype), scores)
        pos = pos - self._log_q(items, batch, n_items)[:, None]  # (b, 1)
        return tf.concat([pos, scores], axis=1)
