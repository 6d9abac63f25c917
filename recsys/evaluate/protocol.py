"""The evaluation protocol: one function for any scorer, one for the baselines.

Every model and every baseline goes through ``evaluate_scorer`` so that they are measured on the
same candidates (all items the user did not rate in train), the same relevant sets (the user's
test items) and the same cut-off. That is what makes the gate's comparison with the popularity
list and with yesterday's model fair.

Typical use (train step, after fitting a model ``m``)::

    metrics = evaluate_scorer(m.score_block, train_df, test_df, n_users, n_items, k=10,
                              predict_fn=m.predict)
    floors = evaluate_baselines(train_df, test_df, n_users, n_items, k=10)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.evaluate.baselines import (
    EASE,
    EASE_LAMBDA,
    EASE_LAMBDAS,
    EASE_MAX_ITEMS,
    BiasedBaseline,
    GlobalMean,
    MostPopular,
    item_gram,
)
from recsys.evaluate.ranking import (
    FactorsFn,
    Interactions,
    ScoreBlockFn,
    ranking_metrics,
    seen_matrix,
    top_k,
    top_k_by_factors,
)
from recsys.evaluate.rating import mae, rmse
from recsys.evaluate.recency import RECENCY_DECAY, RECENCY_DECAYS, History, RecencyEASE

log = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _columns(frame: pd.DataFrame, cols: tuple[str, ...], name: str) -> list[np.ndarray]:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise RecsysError(
            f"The {name} ratings have no column(s) {missing} (columns: {list(frame.columns)}); "
            "pass the names as col_user/col_item/col_rating."
        )
    return [frame[c].to_numpy() for c in cols]


@dataclass(frozen=True)
class RankingTask:
    """What ranking one held-out split needs that no model changes, built once.

    Only users with held-out rows are ranked (the metrics average over them anyway), renumbered
    ``0..m-1`` so a sampled or sparse split costs what it holds, not all ``n_users``. The
    per-epoch validation ranks the same task after every epoch: building it (the seen lists
    out of 24 M train rows at the ml-25m shape) took 3.6 s of its 21.1 s.
    """

    users: np.ndarray  # (m,) int64 user indices of the prepared run, ascending
    seen: Interactions  # (m x n_items) what each ranked user rated in train: never recommended
    relevant: Interactions  # (m x n_items) each ranked user's held-out items
    popularity: np.ndarray  # (n_items,) train ratings per item (novelty)
    n_train_users: int

    @classmethod
    def build(
        cls,
        train_df: pd.DataFrame,
        test_df: pd.DataFrame,
        n_users: int,
        n_items: int,
        col_user: str = S.USER_IDX,
        col_item: str = S.ITEM_IDX,
    ) -> RankingTask:
        tr_u, tr_i = _columns(train_df, (col_user, col_item), "train")
        te_u, te_i = _columns(test_df, (col_user, col_item), "test")
        if len(test_df) == 0:
            raise RecsysError("The test ratings are empty, so the model cannot be evaluated.")
        if len(train_df) == 0:
            raise RecsysError("The train ratings are empty, so the model cannot be evaluated.")
        users = np.unique(te_u.astype(np.int64))  # (m,)
        remap = np.full(n_users, -1, np.int64)
        remap[users] = np.arange(len(users))
        keep = remap[tr_u] >= 0
        return cls(
            users=users,
            seen=seen_matrix(remap[tr_u[keep]], tr_i[keep], len(users), n_items),
            relevant=seen_matrix(remap[te_u], te_i, len(users), n_items),
            popularity=np.bincount(tr_i.astype(np.int64), minlength=n_items),
            n_train_users=len(np.unique(tr_u)),
        )

    def recommend(
        self,
        score_block_fn: ScoreBlockFn,
        k: int,
        block_users: int = 1024,
        factors_fn: FactorsFn | None = None,
    ) -> np.ndarray:
        """``(m, k)`` top-k unseen items of each ranked user (``top_k``); by the scoring job's
        fused kernel when ``factors_fn`` gives a factor model's factors."""
        if factors_fn is not None:
            lists = top_k_by_factors(
                lambda ids: factors_fn(self.users[ids]), len(self.users), k, self.seen
            )
            if lists is not None:
                return lists
        return top_k(
            lambda ids: score_block_fn(self.users[ids]),
            len(self.users),
            self.seen.n_items,
            k,
            self.seen,
            block_users=block_users,
        )

    def metrics(self, recommended: np.ndarray, k: int) -> dict[str, float]:
        """``ranking_metrics`` of the lists and ``n_eval_users``."""
        out = ranking_metrics(recommended, self.relevant, k, self.popularity, self.n_train_users)
        out["n_eval_users"] = int(np.count_nonzero(self.relevant.counts()))
        return out


def evaluate_scorer(
    score_block_fn: ScoreBlockFn,
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    n_users: int,
    n_items: int,
    k: int = 10,
    predict_fn: PredictFn | None = None,
    block_users: int = 1024,
    col_user: str = S.USER_IDX,
    col_item: str = S.ITEM_IDX,
    col_rating: str = S.RATING,
    factors_fn: FactorsFn | None = None,
) -> dict[str, float]:
    """Rating and ranking metrics of one model on the test split.

    Args:
        score_block_fn: ``user_ids (b,) -> scores (b, n_items)``, higher is better.
        train_df: Train ratings: their items are never recommended back, and they give the
            item popularity used by novelty.
        test_df: Held-out ratings: each user's test items are the relevant set (binary
            relevance, every test rating counts whatever its value).
        n_users: Number of users in the prepared run.
        n_items: Number of items in the prepared run.
        k: List length and metric cut-off.
        predict_fn: Optional ``(user_idx, item_idx) -> ratings`` for rating models; adds
            ``rmse`` and ``mae`` on the test rows.
        block_users: Users scored at once (memory vs. call overhead).
        col_user: User index column.
        col_item: Item index column.
        col_rating: Rating column (read only with ``predict_fn``).
        factors_fn: Optional ``Scorer.order_factors``: a factor model's lists are then picked
            by the scoring job's fused kernel (the same lists, ~8x faster).

    Returns:
        ``rmse`` and ``mae`` (with ``predict_fn``), the keys of ``ranking_metrics`` and
        ``n_eval_users``, the number of users the ranking metrics average over.
    """
    task = RankingTask.build(train_df, test_df, n_users, n_items, col_user, col_item)
    out: dict[str, float] = {}
    if predict_fn is not None:
        te_u, te_i, te_r = _columns(test_df, (col_user, col_item, col_rating), "test")
        pred = np.asarray(predict_fn(te_u, te_i))
        out["rmse"] = rmse(te_r, pred)
        out["mae"] = mae(te_r, pred)
    out.update(task.metrics(task.recommend(score_block_fn, k, block_users, factors_fn), k))
    return out


def fit_ease(
    train_df: pd.DataFrame,
    val_df: pd.DataFrame | None,
    n_users: int,
    n_items: int,
    k: int = 10,
    lambdas: Sequence[float] = EASE_LAMBDAS,
    default_lambda: float = EASE_LAMBDA,
    max_items: int = EASE_MAX_ITEMS,
    col_user: str = S.USER_IDX,
    col_item: str = S.ITEM_IDX,
) -> tuple[EASE | None, dict[str, float | str]]:
    """EASE fitted on train, its lambda the best of ``lambdas`` by validation NDCG@k.

    Without validation rows ``default_lambda`` is used. Above ``max_items`` nothing is fitted
    (the Gram matrix is ``n_items^2`` floats): one log line says so and the model is None.

    Returns:
        The fitted model (or None) and what to report: ``lambda``, ``lambda_from``
        (``validation`` or ``default``), ``val_ndcg@k`` of the chosen lambda, ``fit_seconds``;
        or ``{"skipped": reason}``.
    """
    if n_items > max_items:
        reason = f"{n_items:,} items is above the EASE limit of {max_items:,}"
        log.info("EASE baseline skipped: %s (its Gram matrix is n_items^2 floats)", reason)
        return None, {"skipped": reason}
    started = time.perf_counter()
    cols = {"col_user": col_user, "col_item": col_item}
    seen = EASE(**cols).interactions(train_df, n_users, n_items)
    gram = item_gram(seen)
    info: dict[str, float | str] = {}
    if val_df is None or len(val_df) == 0:
        best = EASE(default_lambda, **cols).fit(train_df, n_users, n_items, gram, seen)
        info.update({"lambda": best.lam, "lambda_from": "default"})
    else:
        best, best_ndcg = None, -1.0
        for lam in lambdas:
            model = EASE(lam, **cols).fit(train_df, n_users, n_items, gram, seen)
            got = evaluate_scorer(
                model.score_block, train_df, val_df, n_users, n_items, k=k, **cols
            )[f"ndcg@{k}"]
            log.debug("EASE lambda %g: validation ndcg@%d %.4f", lam, k, got)
            if got > best_ndcg:  # ties keep the smaller lambda
                best, best_ndcg = model, got
        info.update({"lambda": best.lam, "lambda_from": "validation", f"val_ndcg@{k}": best_ndcg})
    info["fit_seconds"] = round(time.perf_counter() - started, 2)
    log.info(
        "EASE baseline: lambda %g (%s), %.1fs", best.lam, info["lambda_from"], info["fit_seconds"]
    )
    return best, info


def fit_recency_ease(
    ease: EASE,
    train_df: pd.DataFrame,
    val_df: pd.DataFrame | None,
    n_users: int,
    n_items: int,
    k: int = 10,
    decays: Sequence[float] = RECENCY_DECAYS,
    default_decay: float = RECENCY_DECAY,
    col_ts: str = S.TS,
) -> tuple[RecencyEASE, dict[str, float | str]]:
    """``RecencyEASE`` on a fitted ``ease``, its decay the best of ``decays`` by validation NDCG@k.

    The EASE weights are reused (lambda as chosen for EASE); each decay costs one ranking of
    the validation users. Without validation rows ``default_decay`` is used.

    Returns:
        The model and what to report: ``decay``, ``decay_from`` (``validation`` or ``default``),
        ``lambda``, ``val_ndcg@k`` of the chosen decay.
    """
    cols = {"col_user": ease.col_user, "col_item": ease.col_item}
    history = History.build(train_df, n_users, n_items, col_ts=col_ts, **cols)
    if val_df is None or len(val_df) == 0:
        best = RecencyEASE(ease, history, default_decay)
        return best, {"decay": best.decay, "decay_from": "default", "lambda": ease.lam}
    task = RankingTask.build(train_df, val_df, n_users, n_items, **cols)
    best, best_ndcg = None, -1.0
    for decay in decays:
        model = RecencyEASE(ease, history, decay)
        got = task.metrics(task.recommend(model.score_block, k), k)[f"ndcg@{k}"]
        log.debug("recency EASE decay %g: validation ndcg@%d %.4f", decay, k, got)
        if got > best_ndcg:  # ties keep the earlier (stronger) decay of the grid
            best, best_ndcg = model, got
    log.info("recency EASE: decay %g (validation ndcg@%d %.4f)", best.decay, k, best_ndcg)
    info = {"decay": best.decay, "decay_from": "validation", "lambda": ease.lam}
    return best, {**info, f"val_ndcg@{k}": best_ndcg}


def evaluate_baselines(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    n_users: int,
    n_items: int,
    k: int = 10,
    val_df: pd.DataFrame | None = None,
    ease_max_items: int = EASE_MAX_ITEMS,
    col_user: str = S.USER_IDX,
    col_item: str = S.ITEM_IDX,
    col_rating: str = S.RATING,
    col_ts: str = S.TS,
) -> dict[str, dict[str, float]]:
    """The floors a model is compared with, on the same split and protocol.

    ``biased_baseline`` is a rating model (``mu + b_u + b_i``); its ranking metrics show what
    ranking by predicted rating gives, next to the popularity list. ``ease`` is the strongest
    simple ranker (``fit_ease``: lambda chosen on ``val_df`` when given); ``recency_ease`` the
    same weights with each user's history weighted by age (``fit_recency_ease``), when the
    train rows carry timestamps (``col_ts``).

    Returns:
        ``{"global_mean": {"rmse", "mae"}, "biased_baseline": {"rmse", "mae", ranking
        metrics}, "most_popular": {ranking metrics, "n_eval_users"}, "ease": {ranking metrics,
        "lambda", "lambda_from", ...} or {"skipped": reason}, "recency_ease": {ranking metrics,
        "decay", "decay_from", ...} or {"skipped": reason}}``.
    """
    (te_u, te_i, te_r) = _columns(test_df, (col_user, col_item, col_rating), "test")
    if len(test_df) == 0:
        raise RecsysError("The test ratings are empty, so the baselines cannot be evaluated.")
    out: dict[str, dict[str, float]] = {}
    mean = GlobalMean(col_rating=col_rating).fit(train_df)
    biased = BiasedBaseline(col_user=col_user, col_item=col_item, col_rating=col_rating)
    biased.fit(train_df, n_users, n_items)
    for name, model in (("global_mean", mean), ("biased_baseline", biased)):
        pred = model.predict(te_u, te_i)
        out[name] = {"rmse": rmse(te_r, pred), "mae": mae(te_r, pred)}
    popular = MostPopular(col_item=col_item).fit(train_df, n_users, n_items)
    ease, out["ease"] = fit_ease(
        train_df,
        val_df,
        n_users,
        n_items,
        k=k,
        max_items=ease_max_items,
        col_user=col_user,
        col_item=col_item,
    )
    rankers = [("most_popular", popular.score_block), ("biased_baseline", biased.score_block)]
    if ease is not None:
        rankers.append(("ease", ease.score_block))
    if ease is None:
        out["recency_ease"] = {"skipped": "no EASE baseline to weight"}
    elif col_ts not in train_df.columns:
        out["recency_ease"] = {"skipped": "the train rows have no timestamps"}
    else:
        recency, out["recency_ease"] = fit_recency_ease(
            ease, train_df, val_df, n_users, n_items, k=k, col_ts=col_ts
        )
        rankers.append(("recency_ease", recency.score_block))
    for name, score_block in rankers:
        ranked = evaluate_scorer(
            score_block,
            train_df,
            test_df,
            n_users,
            n_items,
            k=k,
            col_user=col_user,
            col_item=col_item,
            col_rating=col_rating,
        )
        out[name] = {**out.get(name, {}), **ranked}
    return out
