"""Per-block sampling: which items each user rates, the ratings and their timestamps.

The preference of user u for item i is ``pref = U_u . V_i + A_u . g_i`` (``g_i`` the item's genre
indicator row divided by its genre count). Which items a user rates is drawn *without replacement*
with probability proportional to ``exp(pop_weight * log(popularity_i) + pref_weight * pref)``, so
the choice depends on taste as well as popularity, as on real data: a model that learns the taste
beats the most-popular list on held-out rows. The draw uses the Gumbel top-k trick (add Gumbel
noise to the logits and keep the k largest), which is an exact sample without replacement and
runs vectorised on a block of users x all items. The rating is
``mu + b_u + b_i + genre_bias . g_i + pref + noise``, rounded to half stars (0.5-5.0; before
MovieLens introduced half stars on 2003-02-18 only whole stars, and whole stars are preferred
afterwards too) or to whole stars 1-5 for integer shapes (ml-1m).

Users are processed in blocks of a few hundred, with (block x n_items) float32 buffers reused per
thread, so memory stays bounded whatever the shape; each block has its own random stream, so the
output does not depend on the number of threads.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa

from recsys.data.synth.planted import Planted

__all__ = ["HALF_STAR_EPOCH", "BlockSampler"]

# MovieLens accepted half stars from this day on; earlier ratings are whole stars.
HALF_STAR_EPOCH = 1_045_526_400  # 2003-02-18 00:00:00 UTC
# Ratings are carried as half-star units (rating * 2, int8) and printed through this table.
_RATING_TEXT = pa.array([f"{u / 2:.1f}" for u in range(11)], pa.string())
# Work per block: about this many (user, item) cells, i.e. 64 MiB per float32 buffer.
_BLOCK_CELLS = 1 << 24
# Columns sampled per row to guess the top-k threshold before the exact selection.
_SAMPLE_COLS = 2048


class BlockSampler:
    """Draws the ratings of one block of users; safe to call from several threads at once.

    Each block has its own random stream (seeded by ``(seed, block index)``), so the output does
    not depend on which thread runs which block. The (block, n_items) buffers are kept per thread
    and reused: allocating and page-faulting 64 MiB per block costs more than filling it.
    """

    def __init__(self, model: Planted) -> None:
        self.model = model
        shape = model.shape
        self.block = int(np.clip(_BLOCK_CELLS // shape.n_items, 16, 4096))
        self.n_blocks = -(-shape.n_users // self.block)
        # One matmul gives the whole selection logit, pop_weight * log(pop) + pref_weight * pref:
        # [U, A, 1] (users, dim + 19) @ [pref_weight * V, pref_weight * g, pop_weight * log(pop)]^T.
        ones = np.ones((shape.n_users, 1), np.float32)
        self.user_side = np.hstack([model.user_factors, model.user_genre_affinity, ones])
        log_pop = shape.pop_weight * np.log(model.item_popularity)[:, None]  # (n_items, 1)
        item_side = np.hstack(
            [
                shape.pref_weight * model.item_factors,
                shape.pref_weight * model.item_genre_weights,
                log_pop,
            ]
        )  # (n_items, dim + 19)
        self.item_side_t = np.ascontiguousarray(item_side.T, dtype=np.float32)
        static = model.item_bias + model.item_genre_weights @ model.genre_bias
        self.item_static = static.astype(np.float32)  # (n_items,): b_i + genre_bias . g_i
        self._local = threading.local()

    def _buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This thread's reusable buffers: keys, noise (float32) and a mask, (block, n_items)."""
        bufs = getattr(self._local, "bufs", None)
        if bufs is None:
            cells = (self.block, self.model.shape.n_items)
            bufs = (np.empty(cells, np.float32), np.empty(cells, np.float32), np.empty(cells, bool))
            self._local.bufs = bufs
        return bufs

    def sample(self, b: int) -> pa.Table:
        """All rating rows of block ``b``, sorted by user then time, as an Arrow table."""
        m, shape = self.model, self.model.shape
        lo = b * self.block
        hi = min(lo + self.block, shape.n_users)
        n = hi - lo
        rng = np.random.default_rng([m.seed, 1, b])
        k = m.user_n_ratings[lo:hi]
        key_buf, noise_buf, mask_buf = self._buffers()
        keys, noise, mask = key_buf[:n], noise_buf[:n], mask_buf[:n]  # (block, n_items) each

        np.matmul(self.user_side[lo:hi], self.item_side_t, out=keys)  # selection logits
        # Gumbel noise -log(-log(u)), in place; u == 0 gives -inf (never chosen), p = 2**-24.
        rng.random(dtype=np.float32, out=noise)
        with np.errstate(divide="ignore"):
            np.log(noise, out=noise)
        np.negative(noise, out=noise)
        np.log(noise, out=noise)
        keys -= noise  # (block, n_items): logits + Gumbel; top k per row = sample w/o replacement

        rows, cols = _top_k_rows(keys, k, mask)
        total = len(rows)
        user = lo + rows
        pref = np.einsum("nd,nd->n", m.user_factors[user], m.item_factors[cols])
        pref += np.einsum("ng,ng->n", m.user_genre_affinity[user], m.item_genre_weights[cols])
        rating = (
            np.float32(shape.global_mean)
            + m.user_bias[user]
            + self.item_static[cols]
            + pref
            + rng.standard_normal(total, dtype=np.float32) * np.float32(shape.noise_sd)
        )
        # Times: random order of the chosen items, offsets clustered at the window start.
        offset = np.floor(m.user_span[user] * rng.random(total) ** 3).astype(np.int64)
        order = np.lexsort((offset, rows))
        cols, user, rating, offset = (a[order] for a in (cols, user, rating, offset))
        first = np.concatenate([[0], np.cumsum(k)[:-1]])
        position = np.arange(total) - np.repeat(first, k)  # 0.. within each user
        ts = m.user_start[user] + offset + position  # strictly increasing per user
        units = _to_star_units(rating, ts, shape.half_stars, rng)
        return pa.table(
            {
                "userId": pa.array((user + 1).astype(np.int32)),
                "movieId": pa.array(m.item_ids[cols].astype(np.int32)),
                "rating": pa.DictionaryArray.from_arrays(pa.array(units), _RATING_TEXT),
                "timestamp": pa.array(ts),
            }
        )


def _top_k_rows(
    keys: np.ndarray, k: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k[r]`` largest entries of every row ``r`` of ``keys``, as (rows, cols) index arrays.

    A per-row ``argpartition`` over all items would be the slowest step of the generator, so rows
    take a shortcut that is still exact: a threshold read off a strided sample of the row lies,
    with overwhelming probability, below the row's k-th largest key; only the few entries above
    it are kept, and one sort over the whole block picks each row's top k among them. Rows whose
    threshold keeps fewer than k entries (rare), or that need much of the catalogue anyway, use
    ``argpartition`` instead.

    Args:
        keys: (block, n_items) float32, finite or -inf.
        k: (block,) ints, each in 1..n_items.
        mask: Optional (block, n_items) bool scratch buffer.

    Returns:
        ``rows`` and ``cols`` (int64), grouped by row in increasing row order, ``k[r]`` per row.
    """
    n_rows, n_cols = keys.shape
    step = max(1, n_cols // _SAMPLE_COLS)
    sample = np.sort(keys[:, ::step], axis=1)  # (block, m) ascending
    m = sample.shape[1]
    expect = k * (m / n_cols)  # sampled entries expected above the row's k-th largest key
    j = np.ceil(expect + 4.0 * np.sqrt(expect) + 4.0).astype(np.int64)
    dense = j >= m // 2
    thresh = sample[np.arange(n_rows), np.clip(m - j, 0, m - 1)]
    thresh[dense] = np.inf
    if mask is None:
        mask = np.empty(keys.shape, bool)
    np.greater_equal(keys, thresh[:, None], out=mask)  # (block, n_items)
    flat = np.flatnonzero(mask)
    rows, cols = np.divmod(flat, n_cols)
    counts = np.bincount(rows, minlength=n_rows)
    short = counts < k
    fallback = np.flatnonzero(dense | short)
    if len(fallback):
        keep = ~short[rows]
        rows, cols, flat = rows[keep], cols[keep], flat[keep]
    # Sort candidates by row, then key descending, with one float64 key (rows * scale - key);
    # scale exceeds the spread of the keys, so the row term dominates.
    vals = np.maximum(keys.ravel()[flat].astype(np.float64), -1e6)  # -inf (p = 2**-24) -> low
    scale = 2.0 * (np.abs(vals).max(initial=0.0) + 1.0)
    order = np.argsort(rows * scale - vals, kind="stable")
    rows, cols = rows[order], cols[order]
    starts = np.searchsorted(rows, np.arange(n_rows))
    keep = np.arange(len(rows)) - starts[rows] < k[rows]
    rows, cols = rows[keep], cols[keep]
    if len(fallback):
        extra_rows, extra_cols = [rows], [cols]
        for r in fallback:
            kth = n_cols - int(k[r])
            extra_cols.append(np.argpartition(keys[r], kth)[kth:])
            extra_rows.append(np.full(int(k[r]), r, np.int64))
        rows, cols = np.concatenate(extra_rows), np.concatenate(extra_cols)
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
    return rows, cols


def _to_star_units(
    rating: np.ndarray, ts: np.ndarray, half_stars: bool, rng: np.random.Generator
) -> np.ndarray:
    """Round continuous ratings to the MovieLens scale, as half-star units (rating * 2, int8).

    Half-star shapes: nearest half star in 0.5..5.0, but a half star (other than 0.5) becomes the
    nearer whole star with probability 0.25, because people prefer whole stars (about 30 % of
    MovieLens ratings are half stars, not 50 %), and always before half stars existed
    (``HALF_STAR_EPOCH``). Whole-star shapes: nearest integer in 1..5.
    """
    if not half_stars:
        return (2 * np.clip(np.rint(rating), 1, 5)).astype(np.int8)
    doubled = 2.0 * rating
    units = np.clip(np.rint(doubled), 1, 10)
    odd = (units % 2) == 1
    before = ts < HALF_STAR_EPOCH
    push = odd & (before | ((rng.random(len(units)) < 0.25) & (units > 1)))
    units = np.where(push, units + np.where(doubled > units, 1, -1), units)
    units = np.where(units < 1, 2, units)  # 0.5 pushed down before half stars existed: 1.0
    return units.astype(np.int8)
