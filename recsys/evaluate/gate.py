"""The quality gate: may tonight's model replace the published one?

Two checks on today's test split, both NDCG@k over every unseen item: the model must reach
``(1 + min_lift)`` x the most-popular list, and ``(1 - tolerance)`` x the published model
re-evaluated on today's test users it knows (indices are rebuilt nightly, so both are compared
through original ids). A published refit trained on its night's test rows, so its evaluated twin
(``refit_of``) stands in for it. The decision is committed under ``gates/`` pass or fail, so the
reason outlives the task log. Numpy and pandas only.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys import schema as S
from recsys import storage
from recsys.artifact import Scorer
from recsys.config import Config, GateConfig
from recsys.errors import RecsysError
from recsys.evaluate.prepared import check_inputs, sample_users
from recsys.evaluate.ranking import (
    Interactions,
    distinct,
    ranking_metrics,
    seen_matrix,
    top_k,
    top_k_by_factors,
)
from recsys.lineage import original_ids, published_model
from recsys.manifests import (
    GateManifest,
    ModelManifest,
    RunRef,
)
from recsys.splits import load_split

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reason: str
    path: Path
    manifest: GateManifest


def _ndcg(recommended: np.ndarray, test: pd.DataFrame, train: pd.DataFrame, n_items: int, k: int):
    users = test[S.USER_IDX].to_numpy()
    relevant = seen_matrix(users, test[S.ITEM_IDX].to_numpy(), recommended.shape[0], n_items)
    popularity = np.bincount(train[S.ITEM_IDX].to_numpy(), minlength=n_items)
    n_train_users = max(1, train[S.USER_IDX].nunique())
    return ranking_metrics(recommended, relevant, k, popularity, n_train_users)[f"ndcg@{k}"]


def top_lists(scorer: Scorer, rows: np.ndarray, seen: Interactions, k: int) -> np.ndarray:
    """``(m, k)`` best unseen items of the model's users ``rows``: by the scoring job's fused
    kernel for a factor model (a tile of items at a time, never the dense block), else by
    dense blocks of its scores."""
    lists = top_k_by_factors(lambda ids: scorer.order_factors(rows[ids]), len(rows), k, seen)
    if lists is not None:
        return lists
    return top_k(lambda ids: scorer.rank_scores(rows[ids]), len(rows), seen.n_items, k, seen)


def _test_users(new_prepared: Path, old_users: pd.Index, max_users: int, seed: int):
    """Today's test rows of users the old model knows (sampled), their users ascending, the old
    model's row of each, and today's train rows of those users."""
    cols = (S.USER_IDX, S.ITEM_IDX)
    user_ids = original_ids(new_prepared, "users", S.USER_IDX, S.USER_ID)
    old_row = old_users.get_indexer(user_ids)  # today's user -> the old model's row (-1: new)
    test = load_split(new_prepared, "test", columns=cols)
    test = test[old_row[test[S.USER_IDX].to_numpy()] >= 0]
    test = sample_users(test, max_users, seed)
    chosen = distinct(test[S.USER_IDX].to_numpy())
    train = load_split(new_prepared, "train", columns=cols)
    train = train[np.isin(train[S.USER_IDX].to_numpy(), chosen)]
    return test, chosen, old_row[chosen], train


def compare_with(
    new: Scorer,
    new_prepared: Path,
    old: Scorer,
    old_prepared: Path,
    k: int,
    max_users: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """NDCG@k of both models on today's test users known to the old model.

    Candidates are every item not in the user's train rows, as in evaluation; the old model
    can only name items of its own catalogue (an item new today is a miss for it). Only those
    test users are ranked, each model by its own scorer's fastest exact path (``top_lists``).
    """
    old_users = pd.Index(original_ids(old_prepared, "users", S.USER_IDX, S.USER_ID))
    test, chosen, old_rows, train = _test_users(new_prepared, old_users, max_users, seed)
    if chosen.size == 0:
        return {"users": 0}
    item_ids = original_ids(new_prepared, "items", S.ITEM_IDX, S.ITEM_ID)
    old_item_ids = original_ids(old_prepared, "items", S.ITEM_IDX, S.ITEM_ID)
    # Local numbering 0..m-1 of the chosen users, shared by both models.
    local_train = train.assign(**{S.USER_IDX: np.searchsorted(chosen, train[S.USER_IDX])})
    local_test = test.assign(**{S.USER_IDX: np.searchsorted(chosen, test[S.USER_IDX])})
    m, n_items = chosen.size, len(item_ids)
    users, items = local_train[S.USER_IDX].to_numpy(), local_train[S.ITEM_IDX].to_numpy()
    rec_new = top_lists(new, chosen, seen_matrix(users, items, m, n_items), k)

    # The old model: its rows, its catalogue; today's train items mapped into it.
    to_old_item = pd.Index(old_item_ids).get_indexer(item_ids)  # today's item -> old (-1)
    keep = to_old_item[items] >= 0
    seen_old = seen_matrix(users[keep], to_old_item[items[keep]], m, len(old_item_ids))
    rec_old_own = top_lists(old, old_rows, seen_old, k)
    # back to today's items through the original ids (-1 stays an empty slot)
    to_new_item = pd.Index(item_ids).get_indexer(old_item_ids)
    rec_old = np.where(rec_old_own >= 0, to_new_item[np.maximum(rec_old_own, 0)], -1)

    return {
        "users": int(m),
        "new": _ndcg(rec_new, local_test, local_train, n_items, k),
        "published": _ndcg(rec_old.astype(np.int64), local_test, local_train, n_items, k),
    }


def gateable(model_dir: Path, k: int) -> tuple[ModelManifest, float]:
    """The evaluated model and its test NDCG@k, or one sentence saying why it cannot be judged."""
    model = ModelManifest.read(model_dir)
    check_inputs(model_dir, model)
    if model.refit_of:
        raise RecsysError(
            f"{model_dir} is a refit (trained on the test rows too); gate the model it refits, "
            f"{model.refit_of.path}"
        )
    ndcg = model.test_metric(f"ndcg@{k}")
    if ndcg is None or not math.isfinite(ndcg):  # nothing to compare on
        raise RecsysError(
            f"{model_dir} has no test ndcg@{k} to judge (empty test split, or k differs from the "
            "training run's train.k); prepare with a split that holds rows out"
        )
    return model, ndcg


Check = tuple[dict[str, Any], str | None]  # (the figures, the failure in one sentence or None)


def check_popularity(model: ModelManifest, ndcg: float, k: int, gate: GateConfig) -> Check:
    """The model against ``(1 + min_lift)`` x the most-popular list, on the same test rows."""
    key = f"ndcg@{k}"
    popular = model.baseline_metric("most_popular", key)
    need = popular * (1.0 + gate.min_lift)
    check = {"model": ndcg, "popular": popular, "required": need}
    if ndcg >= need:
        return check, None
    return check, (
        f"test {key} {ndcg:.4f} is below the popularity list's {popular:.4f}"
        + (f" x (1 + min_lift {gate.min_lift:g}) = {need:.4f}" if gate.min_lift else "")
    )


def check_published(
    root: str, model_dir: Path, model: ModelManifest, k: int, gate: GateConfig
) -> Check:
    """The model against ``(1 - tolerance)`` x the published model, re-evaluated on today's test
    users it knows; skipped when nothing (or this model) is published, or it is unreadable."""
    reference = published_model(root)
    if reference is None:
        return {"skipped": "nothing published yet"}, None
    ref_dir, ref = reference
    if ref_dir.resolve() == Path(model_dir).resolve():
        return {"skipped": "this model is the published one"}, None
    try:
        check_inputs(ref_dir, ref)
        old = Scorer.load(ref_dir / "arrays.npz")
        old_prepared = ref.prepared.folder
    except (OSError, ValueError, RecsysError) as exc:
        log.warning("gate: the published model is unreadable (%s); skipped", exc)
        return {"skipped": f"published model unreadable: {exc}"}, None
    new = Scorer.load(Path(model_dir) / "arrays.npz")
    got = compare_with(new, model.prepared.folder, old, old_prepared, k, gate.max_users)
    got.update(model=str(ref_dir), model_version=ref.model_version)
    if got["users"] == 0:
        got["skipped"] = "no test user is known to the published model"
        return got, None
    floor = got["published"] * (1.0 - gate.tolerance)
    got["required"] = floor
    if got["new"] >= floor:
        return got, None
    return got, (
        f"on {got['users']:,} test users known to both, ndcg@{k} {got['new']:.4f} is below "
        f"the published model {ref.model_version}'s {got['published']:.4f} x (1 - tolerance "
        f"{gate.tolerance:g}) = {floor:.4f}"
    )


def decision(checks: dict[str, Any], failures: list[str]) -> str:
    """The reason in one line: every failure, or which checks passed and which were skipped."""
    if failures:
        return "; ".join(failures)
    done = (f"{name} ({'skipped' if 'skipped' in c else 'ok'})" for name, c in checks.items())
    return "passed: " + ", ".join(done)


def run_gate(
    root: str,
    model_dir: Path,
    gate: GateConfig,
    k: int = 10,
    ds: str | None = None,
    run: str | None = None,
) -> GateResult:
    """Judge the evaluated model in ``model_dir``; commit the decision under ``gates/``."""
    model, ndcg = gateable(model_dir, k)
    checks: dict[str, Any] = {}
    failures: list[str] = []
    for name, (check, failure) in (
        ("popularity", check_popularity(model, ndcg, k, gate)),
        ("published", check_published(root, model_dir, model, k, gate)),
    ):
        checks[name] = check
        failures += [failure] if failure else []
    passed, reason = not failures, decision(checks, failures)
    ds = storage.check_ds(ds or model.ds)
    paths = storage.new_run(root, "gates", ds, run)
    manifest = GateManifest(
        ds=ds,
        run=paths.run,
        passed=passed,
        reason=reason,
        model=RunRef.of(model, Path(model_dir)),
        model_version=model.model_version,
        k=k,
        min_lift=gate.min_lift,
        tolerance=gate.tolerance,
        checks=checks,
    )
    final = storage.commit(paths, manifest)
    if passed:
        log.info("gate %s", reason)
    else:
        log.error("gate refused: %s", reason)
    return GateResult(passed, reason, final, manifest)


def gate_model(
    cfg: Config,
    model_ds: str | None = None,
    model_run: str | None = None,
    ds: str | None = None,
    run: str | None = None,
) -> GateResult:
    """:func:`run_gate` on a model run (the given one, else ``models/_LATEST``) with ``cfg``'s
    gate settings and cut-off."""
    storage.check_root(cfg.root, ("models", "recommendations", "gates"))
    model_dir = storage.resolve(cfg.root, "models", model_ds, model_run)
    return run_gate(cfg.root, model_dir, cfg.gate, cfg.train.k, ds, run)
