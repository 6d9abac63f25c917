"""One evaluation per night: the baselines are measured once per prepared run and kept beside it,
and ``recsys evaluate`` shows what the training run recorded unless asked to measure again.

Hand-built prepared runs and models (numpy + pyarrow, no Spark, no TensorFlow).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import storage
from recsys.artifact import Scorer
from recsys.cli import main
from recsys.evaluate import kept, protocol
from recsys.evaluate.baselines import EASE
from recsys.evaluate.prepared import evaluate_prepared
from recsys.manifests import BaselinesManifest, PreparedManifest

N_USERS, N_ITEMS = 30, 20


def _prepared(root, ds: str = "2026-03-01", run: str = "p") -> storage.Path:
    """Users rate 6 of the items of their group of 5 (train), one more each in val and test."""
    rng = np.random.default_rng(0)
    rows = {"train": [], "val": [], "test": []}
    for u in range(N_USERS):
        own = rng.permutation(np.arange(5) + 5 * (u % 4))
        for j, split in enumerate(("train",) * 3 + ("val", "test")):
            rows[split].append((u, int(own[j]), 4.0, 100 * u + j))
    paths = storage.new_run(str(root), "prepared", ds, run)
    for name, n in (("users", N_USERS), ("items", N_ITEMS)):
        (paths.staging / name).mkdir()
        table = {f"{name[:-1]}_id": np.arange(n), f"{name[:-1]}_idx": np.arange(n, dtype=np.int32)}
        pq.write_table(pa.table(table), paths.staging / name / "part-0.parquet")
    for split, part in rows.items():
        out = paths.staging / "ratings" / f"split={split}"
        out.mkdir(parents=True)
        u, i, r, ts = map(np.array, zip(*part, strict=True))
        table = {"user_idx": u.astype(np.int32), "item_idx": i.astype(np.int32),
                 "rating": r.astype(np.float32), "ts": ts.astype(np.int64)}  # fmt: skip
        pq.write_table(pa.table(table), out / "part-0.parquet")
    counts = {s: len(p) for s, p in rows.items()}
    manifest = {"ds": ds, "run": paths.run, "counts": counts, "n_users": N_USERS,
                "n_items": N_ITEMS, "rating_scale": [0.5, 5.0]}  # fmt: skip
    return storage.commit(paths, manifest)


def _model(seed: int) -> Scorer:
    rng = np.random.default_rng(seed)
    return Scorer({
        "family": np.array("mf"), "objective": np.array("ranking"),
        "rating_min": np.float32(0.5), "rating_max": np.float32(5.0),
        "offset": np.float32(0.0), "sigmoid": np.array(False),
        "user_factors": rng.normal(size=(N_USERS, 3)).astype(np.float32),
        "item_factors": rng.normal(size=(N_ITEMS, 3)).astype(np.float32),
    })  # fmt: skip


@pytest.fixture
def fits(monkeypatch) -> list[float]:
    """The lambda of every EASE fit (each one an ``n_items^3`` inversion)."""
    done: list[float] = []
    fit = EASE.fit

    def counted(self, *args, **kwargs):
        done.append(self.lam)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(EASE, "fit", counted)
    return done


def test_the_second_model_on_a_prepared_run_reuses_the_baselines_without_refitting(tmp_path, fits):
    prepared = _prepared(tmp_path)
    first = evaluate_prepared(_model(1), prepared, k=5)
    assert len(fits) == 4  # the validation grid of lambdas, once
    second = evaluate_prepared(_model(2), prepared, k=5)
    assert len(fits) == 4, "the second model refitted EASE"
    assert second["baselines"] == first["baselines"]  # the same figures, to the last bit
    assert first["baselines"]["ease"]["lambda_from"] == "validation"
    assert second["test"] != first["test"]  # each model is still ranked itself
    # Kept as a committed run of the baselines/ table beside the prepared run.
    manifest = PreparedManifest.read(prepared)
    where = kept.kept_run(prepared, manifest, kept.baseline_settings(5, 0, 0))
    saved = BaselinesManifest.read(where.final)
    assert where.final.parent == tmp_path / "baselines" / "ds=2026-03-01"
    assert where.final.name.startswith("run=p.") and saved.prepared.folder == prepared
    assert saved.baselines == first["baselines"] and saved.settings["k"] == 5
    assert not storage.read_pointer(tmp_path / "baselines" / storage.LATEST)


def test_other_settings_or_another_prepared_run_measure_again(tmp_path, fits):
    prepared = _prepared(tmp_path)
    evaluate_prepared(_model(1), prepared, k=5)
    evaluate_prepared(_model(1), prepared, k=3)  # another cut-off: other figures
    assert len(fits) == 8
    other = _prepared(tmp_path, "2026-03-02", "q")
    evaluate_prepared(_model(1), other, k=5)
    assert len(fits) == 12
    assert len(list((tmp_path / "baselines").glob("ds=*/run=*"))) == 3


def _figures(out: dict) -> dict:
    """The baselines' figures without their timings (``fit_seconds``)."""
    return {
        name: {k: v for k, v in row.items() if not k.endswith("seconds")}
        for name, row in out["baselines"].items()
    }


def test_damaged_kept_figures_are_measured_again(tmp_path, fits, caplog):
    prepared = _prepared(tmp_path)
    first = evaluate_prepared(_model(1), prepared, k=5)
    where = kept.kept_run(
        prepared, PreparedManifest.read(prepared), kept.baseline_settings(5, 0, 0)
    )
    (where.final / storage.MANIFEST).write_text("{not json")
    again = evaluate_prepared(_model(1), prepared, k=5)
    # Measured again: the same figures, though not the same fit time.
    assert len(fits) == 8 and _figures(again) == _figures(first)
    assert "unreadable" in caplog.text


def test_recsys_evaluate_shows_the_recorded_figures_and_measures_only_when_asked(
    tmp_path, capsys, monkeypatch
):
    prepared = _prepared(tmp_path)
    scorer = _model(1)
    paths = storage.new_run(str(tmp_path), "models", "2026-03-01", "m")
    np.savez(paths.staging / "arrays.npz", **scorer.arrays)
    recorded = evaluate_prepared(scorer, prepared, k=10)
    recorded["test"]["ndcg@10"] = 0.123456  # what the training run wrote, whatever it was
    manifest = {"ds": "2026-03-01", "run": paths.run, "model_version": "mf-2026-03-01-m",
                "prepared": {"ds": "2026-03-01", "run": "p", "path": str(prepared)},
                "metrics": recorded}  # fmt: skip
    storage.commit(paths, manifest)

    ranked: list[int] = []
    scorer_eval = protocol.evaluate_scorer
    monkeypatch.setattr(
        protocol, "evaluate_scorer", lambda *a, **kw: ranked.append(1) or scorer_eval(*a, **kw)
    )
    import recsys.evaluate.prepared as prepared_module

    monkeypatch.setattr(prepared_module, "evaluate_scorer", protocol.evaluate_scorer)
    assert main(["evaluate", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "0.1235" in out and "as its training measured" in out and not ranked
    assert main(["evaluate", "--root", str(tmp_path), "--recompute"]) == 0
    out = capsys.readouterr().out
    assert "0.1235" not in out and "measured again" in out and ranked
