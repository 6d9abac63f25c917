"""The step contracts: JSON round trips, manifests as the code before format versions wrote
them, and one sentence naming the file for a manifest of the wrong shape or a newer version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recsys import manifests, storage
from recsys.config import TrainConfig
from recsys.manifests import (
    FORMAT_VERSION,
    GateManifest,
    ManifestError,
    ModelManifest,
    PreparedManifest,
    RecommendationsManifest,
    RunRef,
    SimilarItemsManifest,
    links,
)
from recsys.payloads import TrainingRecord, WarmRecord

# The prepared manifest literal of run_prepare before the typed contracts (values filled in).
PREPARED_BEFORE = {
    "table": "prepared",
    "ds": "2026-11-26",
    "run": "manual__2026-11-26",
    "format": "ml-csv",
    "input": ["/data/ml-latest-small/ratings.csv", "/data/ml-latest-small/movies.csv"],
    "input_fingerprint": "ab12",
    "implicit": False,
    "has_timestamps": True,
    "rows_read": 14,
    "rows_valid": 13,
    "quarantine": {"total": 1, "by_reason": {"bad_rating": 1}, "item_rows": 0},
    "duplicates_removed": 1,
    "kcore_removed": 0,
    "titles_redecoded_latin1": 0,
    "n_users": 4,
    "n_items": 5,
    "counts": {"train": 6, "val": 3, "test": 3},
    "rating_scale": [0.5, 5.0],
    "rating_min": 1.0,
    "rating_max": 5.0,
    "global_mean": 3.5,
    "user_id_type": "int64",
    "item_id_type": "int64",
    "split": {
        "kind": "leave-last",
        "test_fraction": 0.2,
        "val_fraction": 0.1,
        "leave_last": 1,
        "leave_last_val": 1,
        "stratify_by": "item",
        "seed": 42,
    },
    "config": {"root": "/var"},
    "versions": {"recsys": "0.1.0", "spark": "4.0.1", "python": "3.11.9"},
    "seconds": 12.5,
}
PREPARED_REF = {"ds": "2026-11-26", "run": "manual__2026-11-26", "path": "/var/prepared/p"}
# The model manifest literal of run_train before the typed contracts.
MODEL_BEFORE = {
    "table": "models",
    "ds": "2026-11-26",
    "run": "r1",
    "model_version": "biased-mf-2026-11-26-r1",
    "family": "biased-mf",
    "objective": "ranking",
    "dims": {"users": 4, "items": 5, "dim": 64},
    "side_features": 0,
    "rating_range": [0.5, 5.0],
    "prepared": PREPARED_REF,
    "train": {"epochs": 20, "dim": 64},
    "training": {"best_epoch": 7, "trained_on": ["train"], "warm_start": {"from": None}},
    "refit_of": None,
    "metrics": {"test": {"ndcg@10": 0.25}, "baselines": {"most_popular": {"ndcg@10": 0.2}}},
    "versions": {"recsys": "0.1.0", "tensorflow": "2.20.0"},
}
MODEL_REF = {"ds": "2026-11-26", "run": "r1", "path": "/var/models/m"}


def test_a_prepared_manifest_as_the_code_wrote_it_before_format_versions():
    m = PreparedManifest.from_dict(PREPARED_BEFORE)
    assert (m.n_users, m.n_items, m.rows, m.count("val"), m.count("nope")) == (4, 5, 12, 3, 0)
    assert m.quarantine.by_reason == {"bad_rating": 1} and m.rating_scale == [0.5, 5.0]
    # written back with this version's fields: no file record (its rows alone are checked)
    assert m.to_dict() == {
        **PREPARED_BEFORE,
        "format_version": FORMAT_VERSION,
        "files": {},
        "synthetic": False,
    }


def test_a_model_manifest_as_the_code_wrote_it_before_format_versions():
    m = ModelManifest.from_dict(MODEL_BEFORE)
    assert m.prepared == RunRef(**PREPARED_REF) and m.dims.dim == 64
    assert (m.best_epoch, m.trained_on, m.warm_source, m.refit_of) == (7, ["train"], None, None)
    assert m.test_metric("ndcg@10") == 0.25 and m.test_metric("mrr@10") is None
    assert m.baseline_metric("most_popular", "ndcg@10") == 0.2
    # Written back with this version's fields: the payloads typed, their missing keys defaulted.
    assert (m.train, m.training) == (TrainConfig(epochs=20, dim=64), TrainingRecord(best_epoch=7))
    out = m.to_dict()
    assert out["training"]["warm_start"] == {"from": None} and out["train"]["model"] == "biased-mf"
    rest = {k: v for k, v in MODEL_BEFORE.items() if k not in ("train", "training")}
    assert {k: out[k] for k in rest} == rest and out["artifacts"] == {}


TODAY = Path(__file__).parent / "fixtures" / "model_manifest_2026-12.json"


def test_a_model_manifest_written_by_todays_code_reads_and_writes_back_unchanged():
    """The fixture is the manifest ``recsys train`` wrote before its payloads were typed."""
    data = json.loads(TODAY.read_text())
    m = ModelManifest.from_dict(data, TODAY)
    assert (m.train.dim, m.train.objective, m.training.best_epoch) == (8, "ranking", 2)
    assert m.training.warm_start == WarmRecord(reason="train.warm_start is off")
    assert m.training.ranking_loss["negatives"] == 0 and m.metrics.val["n_eval_users"] == 60
    assert json.dumps(m.to_dict(), sort_keys=True) == json.dumps(data, sort_keys=True)  # NaN


def test_older_settings_are_upgraded_once(monkeypatch, caplog):
    """A setting renamed since is read under its new name, one this recsys no longer has is
    dropped (logged), one added since takes its default."""
    data = json.loads(TODAY.read_text())
    train = dict(data["train"])
    train["width"] = train.pop("dim")  # as if "dim" had been called "width" then
    del train["user_group"]  # as if user_group had not existed yet
    train["retired_knob"] = 3
    monkeypatch.setitem(manifests.RENAMED, "train", {"width": "dim"})
    with caplog.at_level("INFO", logger="recsys.manifests"):
        m = ModelManifest.from_dict({**data, "train": train}, TODAY)
    assert (m.train.dim, m.train.user_group) == (8, TrainConfig().user_group)
    assert "retired_knob" in caplog.text
    assert m.train == ModelManifest.from_dict(data, TODAY).train


@pytest.mark.parametrize(
    "manifest",
    [
        PreparedManifest.from_dict(PREPARED_BEFORE),
        ModelManifest.from_dict({**MODEL_BEFORE, "refit_of": MODEL_REF}),
        RecommendationsManifest(
            ds="2026-11-26",
            run="r1",
            top_n=10,
            model=RunRef(**MODEL_REF),
            model_version="biased-mf-2026-11-26-r1",
            prepared=RunRef(**PREPARED_REF),
            rows=40,
            rows_by_source={"model": 30, "popular": 10},
        ),
        SimilarItemsManifest(
            ds="2026-11-26",
            run="r1",
            top_n=10,
            model=RunRef(**MODEL_REF),
            model_version="v",
            prepared=RunRef(**PREPARED_REF),
            vectors="item_factors",
        ),
        GateManifest(
            ds="2026-11-26",
            run="g",
            passed=False,
            reason="test ndcg@10 0.1 is below the popularity list's 0.2",
            model=RunRef(**MODEL_REF),
            model_version="v",
            checks={"popularity": {"model": 0.1, "popular": 0.2, "required": 0.2}},
        ),
    ],
    ids=lambda m: m.TABLE,
)
def test_json_round_trip(manifest, tmp_path):
    assert type(manifest).from_json(manifest.to_json()) == manifest
    paths = storage.new_run(str(tmp_path), manifest.TABLE, manifest.ds, manifest.run)
    folder = storage.commit(paths, manifest)
    assert type(manifest).read(folder) == manifest
    assert json.loads((folder / "manifest.json").read_text())["format_version"] == FORMAT_VERSION


def test_keys_this_version_does_not_know_are_kept():
    m = PreparedManifest.from_dict({**PREPARED_BEFORE, "added_later": {"x": 1}})
    assert m.extra == {"added_later": {"x": 1}} and m.to_dict()["added_later"] == {"x": 1}


def _write(tmp_path, data) -> str:
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    return str(tmp_path / "manifest.json")


@pytest.mark.parametrize(
    "data, message",
    [
        ({k: v for k, v in PREPARED_BEFORE.items() if k != "n_items"}, "has no 'n_items'"),
        ({**PREPARED_BEFORE, "counts": "12"}, "has counts = '12', which is not an object"),
        ({**PREPARED_BEFORE, "n_users": "4"}, "has n_users = '4', which is not an integer"),
        ({**PREPARED_BEFORE, "quarantine": {"total": "one"}}, "quarantine.total = 'one'"),
        ({**PREPARED_BEFORE, "format_version": FORMAT_VERSION + 1}, "newer than the"),
        ({**PREPARED_BEFORE, "table": "models"}, "is a models manifest, not a prepared"),
        ([PREPARED_BEFORE], "is not a prepared manifest: it holds a list"),
        ({**PREPARED_BEFORE, "counts": {"train": "9"}}, "counts.train = '9', which is not an"),
        ({**PREPARED_BEFORE, "files": {"users": {"a": None}}}, r"files.users.a = None"),
    ],
    ids=[
        "missing key",
        "wrong type",
        "text for a number",
        "nested",
        "newer",
        "table",
        "list",
        "a count as text",
        "a file size as null",
    ],  # fmt: skip
)
def test_a_manifest_of_the_wrong_shape_is_one_sentence_naming_the_file(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(ManifestError, match=message) as err:
        PreparedManifest.read(tmp_path)
    assert str(err.value).startswith(path) and "\n" not in str(err.value)


def test_links_name_the_runs_a_run_was_made_from(tmp_path):
    _write(tmp_path, {**MODEL_BEFORE, "refit_of": MODEL_REF})
    assert [str(p) for p in links(tmp_path)] == ["/var/prepared/p", "/var/models/m"]
