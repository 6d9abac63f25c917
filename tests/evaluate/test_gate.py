"""The quality gate, on hand-built prepared runs and models (numpy + pyarrow, no Spark).

Each night's prepared run numbers users and items afresh, so the tests build "yesterday" and
"today" over the same original ids with *different* indices: a published model that is the same
model as today's, only renumbered, must score exactly the same through original ids.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import storage
from recsys.artifact import Scorer
from recsys.config import GateConfig
from recsys.errors import RecsysError
from recsys.evaluate.gate import compare_with, run_gate
from recsys.evaluate.prepared import evaluate_prepared

N_USERS, N_ITEMS, DIM, GROUPS = 60, 40, 4, 4


def _taste_data(seed: int = 0):
    """Users in 4 taste groups, each group rating its own 10 items; one test row per user."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        g = u % GROUPS
        own = rng.permutation(np.arange(g * 10, g * 10 + 10))
        for k, item in enumerate(own[:7]):
            rows.append((u, int(item), 4.0, 1000 * u + k, "test" if k == 6 else "train"))
    return rows


def _write_prepared(root: Path, ds: str, run: str, rows, user_perm, item_perm) -> Path:
    """A prepared run whose user/item indices are ``perm[original id]``."""
    paths = storage.new_run(str(root), "prepared", ds, run)
    folder = paths.staging
    users = pa.table(
        {"user_id": pa.array(np.arange(N_USERS), pa.int64()),
         "user_idx": pa.array(user_perm, pa.int32())}
    )  # fmt: skip
    items = pa.table(
        {"item_id": pa.array(np.arange(N_ITEMS) + 100, pa.int64()),
         "item_idx": pa.array(item_perm, pa.int32()),
         "title": [f"Movie {i}" for i in range(N_ITEMS)]}
    )  # fmt: skip
    for name, table in (("users", users), ("items", items)):
        (folder / name).mkdir()
        pq.write_table(table, folder / name / "part-0.parquet")
    counts = {}
    for split in ("train", "val", "test"):
        part = [r for r in rows if r[4] == split]
        counts[split] = len(part)
        out = folder / "ratings" / f"split={split}"
        out.mkdir(parents=True)
        if part:
            pq.write_table(
                pa.table(
                    {"user_idx": pa.array([user_perm[r[0]] for r in part], pa.int32()),
                     "item_idx": pa.array([item_perm[r[1]] for r in part], pa.int32()),
                     "rating": pa.array([r[2] for r in part], pa.float32()),
                     "ts": pa.array([r[3] for r in part], pa.int64())}
                ),
                out / "part-0.parquet",
            )  # fmt: skip
    manifest = {"ds": ds, "run": paths.run, "counts": counts, "n_users": N_USERS,
                "n_items": N_ITEMS, "rating_scale": [0.5, 5.0]}  # fmt: skip
    return storage.commit(paths, manifest)


def _arrays(user_f: np.ndarray, item_f: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "family": np.array("mf"),
        "objective": np.array("ranking"),
        "rating_min": np.float32(0.5),
        "rating_max": np.float32(5.0),
        "offset": np.float32(0.0),
        "sigmoid": np.array(False),
        "user_factors": user_f.astype(np.float32),
        "item_factors": item_f.astype(np.float32),
    }


def _good_factors():
    """A model that knows the groups: user u likes the items of group u % 4."""
    user_f = np.eye(GROUPS)[np.arange(N_USERS) % GROUPS] * 3
    item_f = np.eye(GROUPS)[np.arange(N_ITEMS) // 10] + 0.01 * np.arange(N_ITEMS)[:, None]
    return user_f, item_f


def _write_model(root, ds, run, prepared, arrays, refit_of=None) -> Path:
    paths = storage.new_run(str(root), "models", ds, run)
    np.savez(paths.staging / "arrays.npz", **arrays)
    manifest = {
        "ds": ds,
        "run": paths.run,
        "model_version": f"mf-{ds}-{run}",
        "prepared": {"ds": ds, "run": prepared.name[4:], "path": str(prepared)},
        "metrics": evaluate_prepared(Scorer(arrays), prepared, k=10),
        "refit_of": None if refit_of is None else {"path": str(refit_of)},
    }
    return storage.commit(paths, manifest)


def _publish(root: Path, ds: str, model_dir: Path) -> None:
    """What score + publish leave behind, as far as the gate reads it."""
    paths = storage.new_run(str(root), "recommendations", ds, "pub")
    model = json.loads((model_dir / "manifest.json").read_text())
    manifest = {"ds": ds, "run": paths.run, "top_n": 10, "model": {"path": str(model_dir)},
                "model_version": model["model_version"], "prepared": model["prepared"]}  # fmt: skip
    final = storage.commit(paths, manifest, move_table_latest=True)
    assert storage.latest(str(root), "recommendations") == final


def _in_index_space(factors: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """Rows of ``factors`` (by original id) placed at their indices ``perm[id]``."""
    out = np.empty_like(factors)
    out[perm] = factors
    return out


@pytest.fixture
def night(tmp_path):
    """Yesterday's and today's prepared runs: same rows, different numbering."""
    rows = _taste_data()
    rng = np.random.default_rng(1)
    ident_u, ident_i = np.arange(N_USERS), np.arange(N_ITEMS)
    perm_u, perm_i = rng.permutation(N_USERS), rng.permutation(N_ITEMS)
    old = _write_prepared(tmp_path, "2026-03-01", "a", rows, ident_u, ident_i)
    new = _write_prepared(tmp_path, "2026-03-02", "b", rows, perm_u, perm_i)
    return tmp_path, old, new, (perm_u, perm_i)


def test_a_model_that_beats_popularity_passes_when_nothing_is_published(night):
    root, _, new, (pu, pi) = night
    user_f, item_f = _good_factors()
    arrays = _arrays(_in_index_space(user_f, pu), _in_index_space(item_f, pi))
    model = _write_model(root, "2026-03-02", "m", new, arrays)
    result = run_gate(str(root), model, GateConfig(), k=10)
    assert result.passed, result.reason
    assert result.manifest.checks["published"] == {"skipped": "nothing published yet"}
    decision = storage.read_manifest(result.path)
    assert decision["passed"] is True and decision["model_version"] == "mf-2026-03-02-m"
    assert result.path.parent.parent.name == "gates"


def test_a_model_below_popularity_is_refused_with_the_figures(night):
    root, _, new, (pu, pi) = night
    user_f, item_f = _good_factors()  # turned around: the user's own group ranks last
    arrays = _arrays(_in_index_space(-user_f, pu), _in_index_space(item_f, pi))
    model = _write_model(root, "2026-03-02", "bad", new, arrays)
    assert storage.read_manifest(model)["metrics"]["test"]["ndcg@10"] == 0.0
    result = run_gate(str(root), model, GateConfig(), k=10)
    popular = storage.read_manifest(model)["metrics"]["baselines"]["most_popular"]["ndcg@10"]
    assert not result.passed
    assert "below the popularity list's" in result.reason and f"{popular:.4f}" in result.reason
    assert storage.read_manifest(result.path)["passed"] is False  # the reason outlives the log


def test_min_lift_can_demand_more_than_popularity(night):
    root, _, new, (pu, pi) = night
    user_f, item_f = _good_factors()
    model = _write_model(
        root, "2026-03-02", "m", new,
        _arrays(_in_index_space(user_f, pu), _in_index_space(item_f, pi)),
    )  # fmt: skip
    assert run_gate(str(root), model, GateConfig(min_lift=0.5), k=10).passed
    refused = run_gate(str(root), model, GateConfig(min_lift=100.0), k=10)
    assert not refused.passed and "min_lift 100" in refused.reason


def test_the_published_model_is_compared_through_original_ids(night):
    """Yesterday's model, renumbered, scores exactly what today's equal model scores."""
    root, old, new, (pu, pi) = night
    user_f, item_f = _good_factors()
    same_old = Scorer(_arrays(user_f, item_f))  # identity numbering
    same_new = Scorer(_arrays(_in_index_space(user_f, pu), _in_index_space(item_f, pi)))
    got = compare_with(same_new, new, same_old, old, k=10)
    assert got["users"] == N_USERS
    assert got["new"] == pytest.approx(got["published"], abs=1e-12)
    assert got["new"] > 0.3  # the held-out item is among the 3 unseen items of the group


def test_a_new_model_worse_than_the_published_one_is_refused(night):
    root, old, new, (pu, pi) = night
    user_f, item_f = _good_factors()
    published = _write_model(root, "2026-03-01", "m", old, _arrays(user_f, item_f))
    _publish(root, "2026-03-01", published)
    # Today's model knows only half the groups: still above popularity, below yesterday.
    half = user_f.copy()
    half[np.arange(N_USERS) % GROUPS >= 2] = 0
    rng = np.random.default_rng(3)
    half += rng.normal(scale=0.01, size=half.shape)
    worse = _write_model(
        root, "2026-03-02", "w", new,
        _arrays(_in_index_space(half, pu), _in_index_space(item_f, pi)),
    )  # fmt: skip
    result = run_gate(str(root), worse, GateConfig(tolerance=0.1), k=10)
    check = result.manifest.checks["published"]
    assert check["users"] == N_USERS and check["new"] < 0.9 * check["published"]
    assert not result.passed
    assert "below the published model mf-2026-03-01-m" in result.reason
    # With a tolerance wide enough, the same model passes.
    assert run_gate(str(root), worse, GateConfig(tolerance=0.9), k=10).passed


def test_a_published_refit_is_represented_by_its_evaluated_twin(night):
    """The refit trained on the test rows: comparing with it would be unfair, so the twin."""
    root, old, new, (pu, pi) = night
    user_f, item_f = _good_factors()
    twin = _write_model(root, "2026-03-01", "m", old, _arrays(user_f, item_f))
    # A "refit" that memorised the test rows would beat any honest model.
    cheat = _write_model(root, "2026-03-01", "m-refit", old, _arrays(user_f * 0, item_f), twin)
    _publish(root, "2026-03-01", cheat)
    new_model = _write_model(
        root, "2026-03-02", "m", new,
        _arrays(_in_index_space(user_f, pu), _in_index_space(item_f, pi)),
    )  # fmt: skip
    result = run_gate(str(root), new_model, GateConfig(tolerance=0.0), k=10)
    assert result.manifest.checks["published"]["model"] == str(twin)
    assert result.passed, result.reason


def test_gating_a_refit_is_an_error(night):
    root, old, _, _ = night
    user_f, item_f = _good_factors()
    twin = _write_model(root, "2026-03-01", "m", old, _arrays(user_f, item_f))
    refit = _write_model(root, "2026-03-01", "m-refit", old, _arrays(user_f, item_f), twin)
    with pytest.raises(RecsysError, match="is a refit"):
        run_gate(str(root), refit, GateConfig(), k=10)


def test_a_model_without_test_metrics_cannot_be_judged(night):
    root, _, new, _ = night
    user_f, item_f = _good_factors()
    model = _write_model(root, "2026-03-02", "m", new, _arrays(user_f, item_f))
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["metrics"] = {}
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RecsysError, match="no test ndcg@10 to judge"):
        run_gate(str(root), model, GateConfig(), k=10)


def test_ease_is_reported_but_never_gates(night):
    root, _, new, (pu, pi) = night
    user_f, item_f = _good_factors()
    # A weak model: right for a quarter of the users (group 0), no opinion for the rest.
    user_f = np.where((np.arange(N_USERS) % GROUPS == 0)[:, None], user_f, 0.0)
    arrays = _arrays(_in_index_space(user_f, pu), _in_index_space(item_f, pi))
    model = _write_model(root, "2026-03-02", "weak", new, arrays)
    metrics = storage.read_manifest(model)["metrics"]
    ndcg, base = metrics["test"]["ndcg@10"], metrics["baselines"]
    assert base["most_popular"]["ndcg@10"] < ndcg < base["ease"]["ndcg@10"]
    result = run_gate(str(root), model, GateConfig(), k=10)
    assert result.passed, result.reason
    assert "ease" not in result.manifest.checks
