"""Top-k lists over every unseen item, and the ranking metrics of those lists.

The product is each user's top-N unseen items, so a model is judged the way it will be used: score
every item for a user, drop the items the user already rated in train, keep the k best, and count
how many of the user's held-out (test) items made the list. Sampled-negative protocols ("rank the
test item among 100 random ones") inflate every metric and can even reorder models, so none is
used here.

Per-user item sets are kept as a CSR-like pair of arrays (``Interactions``) built with one numpy
sort, so neither scipy nor a Python loop over users is needed. The metric definitions follow
Spark's ``RankingMetrics`` (``pyspark.ml.evaluation.RankingEvaluator``) wherever Spark defines the
same metric, and a test checks that they agree on random data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from recsys.errors import RecsysError
from recsys.topk import top_k_rows

log = logging.getLogger(__name__)

ScoreBlockFn = Callable[[np.ndarray], np.ndarray]
# users (b,) -> (u (b, d), items_t (d, n_items)) whose product orders each row, or None.
FactorsFn = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray] | None"]

METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr", "coverage", "novelty")


@dataclass(frozen=True)
class Interactions:
    """Each user's distinct items, CSR style: user ``u`` has ``indices[indptr[u]:indptr[u + 1]]``.

    Used both for what a user has seen (masked out of the candidates) and for what a user
    should be recommended (the test items). Items within a row are ascending and distinct,
    which makes membership a binary search over one sorted key array.
    """

    indptr: np.ndarray  # (n_users + 1,) int64
    indices: np.ndarray  # (nnz,) int32, ascending and distinct within each row
    n_users: int
    n_items: int

    def counts(self) -> np.ndarray:
        """Number of items per user, shape ``(n_users,)``."""
        return np.diff(self.indptr)

    def row(self, user: int) -> np.ndarray:
        """The items of one user (a view, ascending)."""
        return self.indices[self.indptr[user] : self.indptr[user + 1]]

    def pairs(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """The (row - ``start``, item) pairs of users ``start .. stop - 1``: index arrays that
        mask those users' items in a ``(stop - start, n_items)`` block."""
        rows = np.repeat(np.arange(stop - start), np.diff(self.indptr[start : stop + 1]))
        return rows, self.indices[self.indptr[start] : self.indptr[stop]]

    def contains(self, users: ArrayLike, items: ArrayLike) -> np.ndarray:
        """Whether each ``(users[j], items[j])`` pair is present; negative items never are.

        Args:
            users: User indices, broadcastable against ``items``.
            items: Item indices; ``-1`` (list padding) is allowed and reported absent.

        Returns:
            A boolean array of the broadcast shape.
        """
        u, i = np.broadcast_arrays(np.asarray(users, np.int64), np.asarray(items, np.int64))
        valid = (i >= 0) & (i < self.n_items)
        if self.indices.size == 0:
            return np.zeros(u.shape, dtype=bool)
        owners = np.repeat(np.arange(self.n_users, dtype=np.int64), self.counts())  # (nnz,)
        keys = owners * self.n_items + self.indices  # (nnz,) ascending: rows, then items
        query = u * self.n_items + i
        pos = np.minimum(np.searchsorted(keys, query), keys.size - 1)
        return valid & (keys[pos] == query)


def distinct(values: ArrayLike) -> np.ndarray:
    """The sorted distinct values of an integer array, as ``np.unique`` gives them, by one sort:
    numpy 2.4's ``np.unique`` hashes, which grows much faster than linearly past ~10^5 values
    (docs/tuning.md, "Distinct values")."""
    out = np.sort(np.asarray(values).ravel())
    if out.size:
        out = out[np.concatenate(([True], out[1:] != out[:-1]))]
    return out


def seen_matrix(
    user_idx: ArrayLike, item_idx: ArrayLike, n_users: int, n_items: int
) -> Interactions:
    """Group (user, item) pairs by user, dropping repeated pairs.

    Args:
        user_idx: Contiguous user indices in ``[0, n_users)``, one per interaction.
        item_idx: Contiguous item indices in ``[0, n_items)``, aligned with ``user_idx``.
        n_users: Number of users (rows), including users without interactions.
        n_items: Number of items in the catalogue.

    Returns:
        The pairs as ``Interactions``; a repeated pair counts once, as Spark's ranking metrics
        treat the ground truth as a set.
    """
    u = np.asarray(user_idx).ravel()
    i = np.asarray(item_idx).ravel()
    if u.shape != i.shape:
        raise ValueError(f"user_idx has {u.size} values but item_idx has {i.size}.")
    if n_items < 1 or n_users < 0:
        raise ValueError(f"Need n_items >= 1 and n_users >= 0, got {n_items} and {n_users}.")
    for name, ids, bound in (("user_idx", u, n_users), ("item_idx", i, n_items)):
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{name} must hold integers, got dtype {ids.dtype}.")
        bad = np.flatnonzero((ids < 0) | (ids >= bound))
        if bad.size:
            raise ValueError(
                f"{name}[{bad[0]}] = {ids[bad[0]]} is outside [0, {bound}); "
                "pass the n_users/n_items of the prepared run these indices come from."
            )
    keys = distinct(u.astype(np.int64) * n_items + i.astype(np.int64))  # sorted, distinct
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n_items, minlength=n_users), out=indptr[1:])
    return Interactions(indptr, (keys % n_items).astype(np.int32), n_users, n_items)


def top_k(
    score_block_fn: ScoreBlockFn,
    n_users: int,
    n_items: int,
    k: int,
    exclude: Interactions | None,
    block_users: int = 1024,
    candidates_mask: ArrayLike | None = None,
) -> np.ndarray:
    """Each user's ``k`` best-scored items among the candidates, scored a block of users at a time.

    Scoring users x items densely, one block at a time, is the same work the nightly scoring
    job does, so the lists evaluated here are the lists that would be published.

    Args:
        score_block_fn: Maps user ids ``(b,)`` to scores ``(b, n_items)``; higher is better.
            The result is copied, so a cached or broadcast array may be returned. ``-inf`` marks
            an item the model will not recommend; NaN is an error.
        n_users: Users are ``0 .. n_users - 1``; every one gets a row.
        n_items: Number of items scored per user.
        k: List length.
        exclude: Items never recommended to a user (what they rated in train), or ``None``.
        block_users: Users scored together; peak memory is a few ``(block_users, n_items)``
            arrays.
        candidates_mask: Optional ``(n_items,)`` booleans, ``True`` where an item may be
            recommended to anyone (e.g. items still in the catalogue).

    Returns:
        ``(n_users, k)`` int32 item ids, best first, ties broken by the lower item id, padded
        with ``-1`` when a user has fewer than ``k`` candidates.
    """
    if k < 1 or block_users < 1:
        raise ValueError(f"k and block_users must be positive, got {k} and {block_users}.")
    if exclude is not None and (exclude.n_users, exclude.n_items) != (n_users, n_items):
        raise ValueError(
            f"exclude covers {exclude.n_users} users x {exclude.n_items} items, "
            f"expected {n_users} x {n_items}."
        )
    banned = None
    if candidates_mask is not None:
        mask = np.asarray(candidates_mask)
        if mask.shape != (n_items,) or mask.dtype != bool:
            raise ValueError(f"candidates_mask must be ({n_items},) booleans, got {mask.shape}.")
        banned = ~mask
    out = np.empty((n_users, k), dtype=np.int32)
    for start in range(0, n_users, block_users):
        stop = min(start + block_users, n_users)
        users = np.arange(start, stop, dtype=np.int32)
        block = np.asarray(score_block_fn(users))
        if block.shape != (users.size, n_items):
            raise ValueError(
                f"score_block_fn returned shape {block.shape} for {users.size} users; "
                f"expected ({users.size}, {n_items})."
            )
        # Own copy (float so -inf fits): the callable may hand back a shared array.
        scores = np.array(block, dtype=np.result_type(block.dtype, np.float32))  # (b, n_items)
        if np.isnan(scores).any():
            row = int(np.flatnonzero(np.isnan(scores).any(axis=1))[0])
            raise ValueError(f"score_block_fn returned NaN scores for user {start + row}.")
        if banned is not None:
            scores[:, banned] = -np.inf
        if exclude is not None:
            scores[exclude.pairs(start, stop)] = -np.inf
        out[start:stop] = top_k_rows(scores, k)
        log.debug("top_k: users %d-%d of %d", start, stop, n_users)
    return out


def top_k_by_factors(
    factors_fn: FactorsFn, n_users: int, k: int, exclude: Interactions, block_users: int = 4096
) -> np.ndarray | None:
    """``top_k`` for a factor model, by the scoring job's fused kernel; ``None`` for other models.

    ``factors_fn(users)`` gives ``(u (b, d), items_t (d, n_items))`` whose product orders each
    row as the model does (``Scorer.order_factors``), or ``None``. The kernel
    (``recsys.score.topn.top_k_factored``) scores a cache-sized tile at a time and keeps only
    the tile's candidates, so the evaluated lists are the ones the scoring job publishes, in an
    eighth of the time of the dense block (ml-25m shape, 20,000 users: 2.2 s against 17.5 s).
    """
    from threadpoolctl import threadpool_limits

    from recsys.score.topn import top_k_factored

    out = np.empty((n_users, k), dtype=np.int32)
    # The kernel's tiles are sized for one core's cache, as in the scoring job: a BLAS thread
    # pool on such small products spends its time synchronising (docs/tuning.md).
    with threadpool_limits(limits=1, user_api="blas"):
        for start in range(0, n_users, block_users):
            stop = min(start + block_users, n_users)
            factors = factors_fn(np.arange(start, stop, dtype=np.int64))
            if factors is None:
                return None
            rows, items = exclude.pairs(start, stop)
            out[start:stop] = top_k_factored(*factors, rows, items.astype(np.int64), k)
    return out


def _checked(
    recommended: ArrayLike,
    relevant: Interactions,
    k: int,
    item_popularity: ArrayLike,
    n_train_users: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``ranking_metrics``' inputs checked: the lists cut or padded (``-1``) to ``(n_users, k)``
    int64, and the popularity as float64; a wrong shape, dtype or id is a ValueError."""
    rec = np.asarray(recommended)
    n_items = relevant.n_items
    if rec.ndim != 2 or rec.shape[0] != relevant.n_users:
        raise ValueError(
            f"recommended must be ({relevant.n_users}, k), one row per user; got {rec.shape}."
        )
    if not np.issubdtype(rec.dtype, np.integer):
        raise ValueError(f"recommended must hold integer item ids, got dtype {rec.dtype}.")
    if k < 1 or n_train_users < 1:
        raise ValueError(f"k and n_train_users must be positive, got {k} and {n_train_users}.")
    pop = np.asarray(item_popularity, dtype=np.float64)
    if pop.shape != (n_items,):
        raise ValueError(f"item_popularity must have shape ({n_items},), got {pop.shape}.")
    rec = rec[:, :k].astype(np.int64)
    if rec.shape[1] < k:  # a short list is a list with empty slots
        rec = np.pad(rec, ((0, 0), (0, k - rec.shape[1])), constant_values=-1)
    if rec.size and (rec.min() < -1 or rec.max() >= n_items):
        raise ValueError(f"recommended holds item ids outside [-1, {n_items}).")
    return rec, pop


def ranking_metrics(
    recommended: ArrayLike,
    relevant: Interactions,
    k: int,
    item_popularity: ArrayLike,
    n_train_users: int,
) -> dict[str, float]:
    """Top-k metrics with binary relevance, averaged over users with at least one relevant item.

    Users without a relevant item say nothing about ranking quality, so they are left out of
    every average (Spark would count them as 0). All metrics, coverage and novelty included,
    describe that same set of users. Definitions (``hits_i`` = 1 if the item at rank i is
    relevant, ``R`` = the user's relevant set):

    * ``precision@K`` = sum(hits) / K, even when the list is shorter than K (Spark's precisionAt).
    * ``recall@K`` = sum(hits) / |R| (Spark's recallAt).
    * ``ndcg@K`` = sum_i hits_i / log2(i + 1) over the ideal value, which has min(|R|, K)
      hits on top (Spark's ndcgAt).
    * ``map@K`` = sum over hit ranks i of precision@i, divided by min(|R|, K) (Spark's
      meanAveragePrecisionAt).
    * ``hit_rate@K``: share of users with at least one hit.
    * ``mrr@K``: mean of 1 / rank of the first hit, 0 without a hit.
    * ``coverage@K``: distinct recommended items / n_items (catalogue coverage).
    * ``novelty@K``: mean over recommended slots of -log2(popularity / n_train_users), the
      self-information of the item, popularity clipped to >= 1 so unseen items stay finite.

    Args:
        recommended: ``(n_users, >= k)`` item ids best first, ``-1`` for an empty slot; only
            the first ``k`` columns are used.
        relevant: Each user's held-out items; row ``u`` belongs to row ``u`` of ``recommended``.
        k: Cut-off; also names the keys (``ndcg@10``).
        item_popularity: ``(n_items,)`` train interaction counts.
        n_train_users: Number of users in train (the denominator of an item's popularity).

    Returns:
        The eight metrics above as floats, keyed ``<name>@K``.
    """
    n_items = relevant.n_items
    rec, pop = _checked(recommended, relevant, k, item_popularity, n_train_users)

    n_rel_all = relevant.counts()
    users = np.flatnonzero(n_rel_all > 0)  # (m,)
    if users.size == 0:
        raise RecsysError(
            "No user has a held-out item, so ranking metrics are undefined; "
            "check that the test split is not empty."
        )
    rec = rec[users]  # (m, k)
    n_rel = n_rel_all[users].astype(np.float64)  # (m,)
    hits = relevant.contains(users[:, None], rec)  # (m, k) bool
    rank = np.arange(1, k + 1, dtype=np.float64)  # (k,)
    discount = 1.0 / np.log2(rank + 1.0)  # (k,)

    n_hits = hits.sum(axis=1).astype(np.float64)  # (m,)
    ideal = np.minimum(n_rel, k).astype(np.int64)  # (m,) hits a perfect list would have
    dcg = hits @ discount  # (m,)
    idcg = np.cumsum(discount)[ideal - 1]  # (m,)
    precision_at_hits = np.where(hits, np.cumsum(hits, axis=1) / rank, 0.0)  # (m, k)
    first = hits.argmax(axis=1)  # (m,) rank - 1 of the first hit (0 when none)
    slots = rec[rec >= 0]  # every filled (user, item) slot
    info = -np.log2(np.maximum(pop[slots], 1.0) / n_train_users)  # (n_slots,) bits
    values = {
        "precision": float(np.mean(n_hits / k)),
        "recall": float(np.mean(n_hits / n_rel)),
        "ndcg": float(np.mean(dcg / idcg)),
        "map": float(np.mean(precision_at_hits.sum(axis=1) / ideal)),
        "hit_rate": float(np.mean(n_hits > 0)),
        "mrr": float(np.mean(np.where(n_hits > 0, 1.0 / (first + 1.0), 0.0))),
        "coverage": distinct(slots).size / n_items,
        "novelty": float(info.mean()) if info.size else 0.0,
    }
    return {f"{name}@{k}": values[name] for name in METRICS}
