"""Warm start by original id, cold start for a source that will not do, and the continue refit.

Night 1 is a real prepared run; night 2 is the same log with some users gone, some users and
items new, and every index shuffled (prepare numbers ids afresh each night), written by hand so
the test knows exactly which ids the nights share.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace

import keras
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import integrity, storage
from recsys import schema as S
from recsys.config import TrainConfig, load_config, resolve_train
from recsys.errors import RecsysError
from recsys.manifests import ModelManifest, PreparedManifest, RecommendationsManifest, RunRef
from recsys.payloads import TrainingRecord, WarmRecord

pytest.importorskip("tensorflow")

NIGHT1, NIGHT2 = "2026-06-01", "2026-06-02"


def _write(table: pd.DataFrame, folder, schema=None) -> None:
    folder.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pandas(table, schema=schema, preserve_index=False), folder / "part-0.parquet"
    )


def next_night(root: str, src, seed: int = 5, drop=4, new_users=5, new_items=3):
    """Night 2's prepared run: night 1's rows minus ``drop`` users, plus new users (copies of
    others' train rows) and new items (rated by a few users), every index permuted."""
    rng = np.random.default_rng(seed)
    users = pq.read_table(src / "users").to_pandas().sort_values(S.USER_IDX)
    items = pq.read_table(src / "items").to_pandas().sort_values(S.ITEM_IDX)
    uid, iid = users[S.USER_ID].to_numpy(), items[S.ITEM_ID].to_numpy()
    rows = {}
    for split in S.SPLITS:
        r = pq.read_table(src / "ratings" / f"split={split}").to_pandas()
        rows[split] = r.assign(u=uid[r[S.USER_IDX]], i=iid[r[S.ITEM_IDX]])
    gone = set(rng.choice(uid, drop, replace=False).tolist())
    added_users = np.arange(uid.max() + 1, uid.max() + 1 + new_users)
    added_items = np.arange(iid.max() + 1, iid.max() + 1 + new_items)
    train = rows["train"]
    copies = [train[train.u == rng.choice(uid)].assign(u=u) for u in added_users]
    raters = rng.choice(uid, (new_items, 6), replace=False)
    fresh = pd.DataFrame({"u": raters.ravel(), "i": np.repeat(added_items, 6)})
    fresh = fresh.assign(**{S.RATING: np.float32(4.0), S.TS: train[S.TS].max() + 1})
    rows["train"] = pd.concat([train, *copies, fresh], ignore_index=True)
    rows = {s: r[~r.u.isin(gone)] for s, r in rows.items()}
    kept_users = np.array([u for u in uid if u not in gone] + added_users.tolist())
    all_items = np.concatenate([iid, added_items])
    u_idx = pd.Series(rng.permutation(len(kept_users)).astype(np.int32), index=kept_users)
    i_idx = pd.Series(rng.permutation(len(all_items)).astype(np.int32), index=all_items)

    paths = storage.new_run(root, "prepared", NIGHT2, "night2")
    new_item_rows = items.iloc[: len(added_items)].assign(**{S.ITEM_ID: added_items})
    item_table = pd.concat([items, new_item_rows], ignore_index=True)
    item_table[S.ITEM_IDX] = i_idx[item_table[S.ITEM_ID]].to_numpy()
    user_table = pd.DataFrame({S.USER_ID: kept_users, S.USER_IDX: u_idx[kept_users].to_numpy()})
    user_table[S.N_RATINGS] = 0
    _write(user_table, paths.staging / "users")
    _write(item_table, paths.staging / "items")
    for split, r in rows.items():
        out = r.assign(**{S.USER_IDX: u_idx[r.u].to_numpy(), S.ITEM_IDX: i_idx[r.i].to_numpy()})
        _write(out[S.RATINGS_ARROW.names], paths.staging / "ratings" / f"split={split}",
               S.RATINGS_ARROW)  # fmt: skip
    manifest = storage.read_manifest(src)
    manifest.update(
        ds=NIGHT2,
        run="night2",
        n_users=len(kept_users),
        n_items=len(all_items),
        counts={s: len(r) for s, r in rows.items()},
        files=integrity.prepared_files(paths.staging),  # what a step reading it checks
    )
    return storage.commit(paths, manifest)


TRAIN = {"epochs": 2, "dim": 8, "patience": 1, "seed": 3}


def tcfg(**overrides) -> TrainConfig:
    return resolve_train(TrainConfig(**{**TRAIN, **overrides}))


@pytest.fixture(scope="module")
def nights(spark, tmp_path_factory, synthetic_run):
    """The root, both prepared runs and night 1's trained models by family."""
    from recsys.train.step import run_train

    root = synthetic_run(tmp_path_factory.mktemp("warm"), (100, 70, 2500), 4, NIGHT1)
    night1 = storage.latest(root, "prepared")
    models = {}
    for family in ("neumf", "biased-mf"):
        cfg = load_config(root=root, train={**TRAIN, "model": family})
        models[family] = run_train(cfg, NIGHT1, f"night1-{family}").path
    return root, night1, next_night(root, night1), models


def _by_id(prepared, table, idx, id_col) -> pd.Series:
    frame = pq.read_table(prepared / table, columns=[idx, id_col]).to_pandas()
    return frame.set_index(id_col)[idx]


@pytest.mark.parametrize("family", ["biased-mf", "neumf"])
def test_warm_start_copies_the_rows_of_ids_known_to_both_nights(nights, family):
    from recsys.train.models.build import build_model, genre_matrix, ranking_settings
    from recsys.train.warm import Origin, load_warm_start

    root, night1, night2, models = nights
    cfg = tcfg(model=family, warm_start=True)
    manifest = PreparedManifest.read(night2)
    features = genre_matrix(night2 / "items", manifest.n_items)
    ranking = ranking_settings(cfg, manifest, 256)
    start = load_warm_start(cfg, night2, manifest, Origin(models[family], required=True))
    model = build_model(cfg, manifest, features, ranking)
    cold = build_model(cfg, manifest, features, ranking)  # the same seeds: the fresh rows
    record = start.apply(model)
    old = keras.saving.load_model(models[family] / "model.keras")

    # Tonight's index -> last night's, through the ids, for those both nights know.
    maps = {}
    for kind, table, idx, id_col in (
        ("user", "users", S.USER_IDX, S.USER_ID),
        ("item", "items", S.ITEM_IDX, S.ITEM_ID),
    ):
        both = pd.concat([_by_id(night2, table, idx, id_col), _by_id(night1, table, idx, id_col)],
                         axis=1, keys=["new", "old"])  # fmt: skip
        maps[kind] = both.dropna().astype(int), both[both["old"].isna()]["new"].astype(int)
    assert record.users == len(maps["user"][0]) == 100 - 4
    assert record.items == len(maps["item"][0]) == 70
    assert len(maps["user"][1]) == 5 and len(maps["item"][1]) == 3  # new tonight

    tables = [n for n in ("user_emb", "item_emb", "item_bias", "user_gmf", "item_gmf",
                          "user_mlp", "item_mlp") if hasattr(model, n)]  # fmt: skip
    assert len(tables) == (3 if family == "biased-mf" else 4)
    for name in tables:
        known, new = maps[name.split("_")[0]]
        got, fresh = np.array(getattr(model, name)), np.array(getattr(cold, name))
        want = np.array(getattr(old, name))[known["old"]]
        np.testing.assert_array_equal(got[known["new"]], want, err_msg=name)
        np.testing.assert_array_equal(got[new.to_numpy()], fresh[new.to_numpy()], err_msg=name)
        if name != "item_bias":  # biases start at zero: trained ones differ from that
            assert not np.allclose(got[known["new"]], fresh[known["new"]]), name
    # Dense weights: the same genres both nights, so the genre table too; the genre matrix
    # itself is tonight's (new items, new rows).
    np.testing.assert_array_equal(np.array(model.side[1]), np.array(old.side[1]))
    np.testing.assert_array_equal(np.array(model.side[0]), features)
    if family == "neumf":
        for a, b in zip(model.mlp.dense + [model.out], old.mlp.dense + [old.out], strict=True):
            np.testing.assert_array_equal(np.array(a.kernel), np.array(b.kernel))
    assert record.source == str(models[family]) and record.kept_fresh == []


@pytest.mark.parametrize("family", ["biased-mf", "neumf"])
def test_fold_in_solves_only_the_rows_of_users_new_tonight(nights, family):
    from recsys.splits import load_split
    from recsys.train.foldin import fold_in_users
    from recsys.train.models.build import build_model, ranking_settings
    from recsys.train.warm import Origin, load_warm_start

    root, _, night2, models = nights
    cfg = tcfg(model=family, warm_start=True)
    manifest = PreparedManifest.read(night2)
    ranking = ranking_settings(cfg, manifest, 256)
    start = load_warm_start(cfg, night2, manifest, Origin(models[family], required=True))
    model = build_model(cfg, manifest, None, ranking)
    start.apply(model)
    table = "user_emb" if family == "biased-mf" else "user_gmf"
    before = np.array(getattr(model, table))
    new = np.flatnonzero(start.user_rows < 0)
    rows = load_split(night2, "train")
    record = fold_in_users(model, new, rows, ranking)
    after = np.array(getattr(model, table))
    old = np.setdiff1d(np.arange(len(before)), new)
    np.testing.assert_array_equal(after[old], before[old])
    if family == "neumf":  # no fold-in for a neural model: fresh rows stay
        assert record["users"] == 0 and "no fold-in" in record["reason"]
        np.testing.assert_array_equal(after, before)
        return
    assert record["users"] == len(new) == 5
    assert record["loss_after"] < record["loss_before"]
    # Each new row is the minimiser of its user's full-softmax loss: the gradient vanishes.
    arrays = model.export_arrays()
    v, b = arrays["item_factors"], arrays["item_bias"]
    for user in new:
        chosen = rows[S.ITEM_IDX].to_numpy()[rows[S.USER_IDX].to_numpy() == user]
        p = np.exp(after[user] @ v.T + b)
        p /= p.sum()
        grad = p @ v - v[chosen].mean(0) + 2 * cfg.l2 * after[user]
        assert np.abs(grad).max() < 1e-3, user


def _corrupt(models, tmp_path):
    bad = tmp_path / "run=corrupt"
    shutil.copytree(models["biased-mf"], bad)
    (bad / "model.keras").write_bytes(b"PK\x03\x04 not a zip archive")
    return bad


def _no_file(models, tmp_path):
    bad = tmp_path / "run=no-file"
    shutil.copytree(models["biased-mf"], bad)
    (bad / "model.keras").unlink()
    return bad


@pytest.mark.parametrize(
    ("case", "train", "source", "why"),
    [
        ("nothing yet", {}, None, "no model was published or trained"),
        ("file missing", {}, _no_file, "model.keras is missing"),
        # its checksum differs from the one train recorded: refused before Keras reads it
        ("corrupt", {}, _corrupt, "model.keras has sha256"),
        (
            "other family",
            {"model": "mf"},
            "biased-mf",
            "family biased-mf, tonight trains family mf",
        ),
        ("other dim", {"dim": 16}, "biased-mf", "dim 8, tonight trains dim 16"),
        ("other objective", {"objective": "rating"}, "biased-mf", "objective ranking"),
    ],
)
def test_a_source_that_will_not_do_gives_one_line_and_a_cold_start(
    nights, tmp_path, caplog, monkeypatch, case, train, source, why
):
    from recsys.train import warm

    root, _, night2, models = nights
    found = source(models, tmp_path) if callable(source) else models.get(source)
    monkeypatch.setattr(warm, "find_source", lambda _root: found)
    cfg = tcfg(warm_start=True, **{"model": "biased-mf", **train})
    with caplog.at_level(logging.INFO, logger="recsys.train.warm"):
        start = warm.load_warm_start(
            cfg, night2, PreparedManifest.read(night2), warm.origin(root, cfg)
        )
    assert start.weights is None and why in start.reason
    said = [r.getMessage() for r in caplog.records if r.name.startswith("recsys")]
    assert said == [f"cold start: {start.reason}"]
    assert start.apply(object()) == WarmRecord(source=None, reason=start.reason)
    # An explicit source (a continue refit) must not start cold.
    if found is not None:
        with pytest.raises(RecsysError, match="cannot start from"):
            explicit = warm.origin(root, cfg, found)
            warm.load_warm_start(cfg, night2, PreparedManifest.read(night2), explicit)


def test_a_split_of_another_kind_is_not_a_source(nights, tmp_path, monkeypatch):
    """Rows trained on under one split can be held out under another: cold start."""
    from recsys.train import warm
    from recsys.train.warm import load_warm_start

    root, _, night2, models = nights
    monkeypatch.setattr(warm, "find_source", lambda _root: models["biased-mf"])
    other = tmp_path / "prepared"
    shutil.copytree(night2, other)
    manifest = replace(PreparedManifest.read(night2), split={"kind": "random"})
    (other / "manifest.json").write_text(manifest.to_json())
    start = load_warm_start(tcfg(), other, manifest, warm.origin(root, tcfg()))
    assert start.reason == "train.warm_start is off"
    warmed = tcfg(warm_start=True)
    start = load_warm_start(warmed, other, manifest, warm.origin(root, warmed))
    assert start.weights is None and "split" in start.reason


def _publish(root, ds, run, model_dir):
    """A recommendations run naming ``model_dir``, as publish leaves it (whatever its ds)."""
    paths = storage.new_run(root, "recommendations", ds, run)
    model = json.loads((model_dir / "manifest.json").read_text())
    manifest = RecommendationsManifest(
        ds=ds,
        run=paths.run,
        top_n=10,
        model=RunRef(path=str(model_dir)),
        model_version=model.get("model_version", "broken"),
        prepared=RunRef(**model.get("prepared", {"path": "/nowhere"})),
    )
    return storage.commit(paths, manifest, backwards=True)


def test_nightly_train_warm_starts_from_the_published_model(nights, tmp_path):
    from recsys.train.step import run_train

    root, _, night2, models = nights
    _publish(root, NIGHT1, "served", models["biased-mf"])
    cfg = load_config(root=root, train={**TRAIN, "warm_start": True, "epochs": 1})
    result = run_train(cfg, NIGHT2, "warm", NIGHT2, "night2")
    m = result.manifest
    assert m.prepared.run == "night2"
    record = m.training.warm_start
    assert record.source == str(models["biased-mf"]) and record.users == 96
    assert {"user_emb#0", "item_emb#0", "item_bias#0", "side_emb#0"} <= set(record.copied)
    # The five users new tonight were folded in; the step is the warm one.
    fold = record.fold_in
    assert fold["users"] == 5 and fold["loss_after"] < fold["loss_before"]
    t = resolve_train(cfg.train)
    assert m.training.table_learning_rate == pytest.approx(t.learning_rate * t.warm_lr_scale)

    # Its full refit re-runs the recipe from the same start, not from random rows.
    full = load_config(root=root, train={"refit_mode": "full"})
    refit = run_train(full, NIGHT2, "warm-refit", refit_of=result.path).manifest
    assert refit.training.warm_start.source == str(models["biased-mf"])
    assert refit.training.trained_on == ["train", "val", "test"]
    assert refit.train.epochs == m.training.best_epoch

    # The night does not fail when the published model is broken: it trains cold.
    broken = _corrupt(models, tmp_path)
    _publish(root, NIGHT2, "broken", broken)
    m = run_train(cfg, NIGHT2, "cold", NIGHT2, "night2").manifest
    assert m.training.warm_start.source is None
    assert "changed or damaged" in m.training.warm_start.reason


def test_continue_refit_starts_from_the_evaluated_model_on_its_unseen_rows(nights):
    from recsys.train.models.build import build_model
    from recsys.train.step import run_train
    from recsys.train.warm import find_source

    root, night1, _, models = nights
    evaluated = models["biased-mf"]
    cfg = load_config(root=root, train={"refit_mode": "continue", "refit_epochs": 1})
    m = run_train(cfg, NIGHT1, "continued", refit_of=evaluated).manifest
    counts = PreparedManifest.read(night1).counts
    t = m.training
    assert t.continued_on == ["val", "test"] and t.trained_on == ["train", "val", "test"]
    assert t.epochs_run == 1 and m.train.epochs == 1
    assert t.steps_per_epoch == max(1, (counts["val"] + counts["test"]) // t.global_batch)
    assert t.warm_start.source == str(evaluated)
    assert t.warm_start.users == 100 and t.warm_start.items == 70  # same indices
    assert m.refit_of.path == str(evaluated) and not m.train.warm_start
    # One epoch over a few hundred rows moves the factors a little from the evaluated model's,
    # far less than training moved the evaluated model from its random start (a continue refit
    # that started cold would be about that far from it).
    refit = np.load(storage.resolve(root, "models", NIGHT1, "continued") / "arrays.npz")
    twin = np.load(evaluated / "arrays.npz")["user_factors"]
    manifest = PreparedManifest.read(night1)
    init = np.array(build_model(tcfg(), manifest, None).user_emb)
    step, trained = (np.abs(refit["user_factors"] - twin).mean(), np.abs(twin - init).mean())
    assert 0 < step < 0.5 * trained

    # Served tomorrow, this refit seeds the next night through its evaluated twin.
    _publish(root, NIGHT1, "served-refit", storage.resolve(root, "models", NIGHT1, "continued"))
    assert find_source(root) == evaluated


def test_refit_config_takes_the_mode_from_the_command_and_never_warm_starts():
    from recsys.config import check_train_config
    from recsys.train.step import refit_config

    evaluated = ModelManifest(
        ds="2026-01-01",
        run="r",
        model_version="biased-mf-2026-01-01-r",
        prepared=RunRef(path="/nowhere"),
        train=tcfg(warm_start=True, epochs=30),
        training=TrainingRecord(best_epoch=7),
    )
    full = refit_config(load_config(train={"refit_mode": "full"}), evaluated).train
    assert (full.epochs, full.refit_mode, full.warm_start) == (7, "full", False)
    cfg = load_config(train={"refit_mode": "continue", "refit_epochs": 3})
    cont = refit_config(cfg, evaluated).train
    assert (cont.epochs, cont.refit_mode, cont.warm_start, cont.dim) == (3, "continue", False, 8)
    # A continue refit starts from the evaluated model at the command's refit step; a full refit
    # keeps the evaluated model's own warm step for its own start.
    assert (cont.warm_lr_scale, cont.refit_lr_scale) == (0.5, 0.5)
    cfg = load_config(train={"refit_mode": "continue", "refit_lr_scale": 0.125})
    assert refit_config(cfg, evaluated).train.warm_lr_scale == 0.125
    cfg = load_config(train={"refit_mode": "full", "refit_lr_scale": 0.125})
    assert refit_config(cfg, evaluated).train.warm_lr_scale == 0.5
    with pytest.raises(RecsysError, match="train.refit_mode must be full or continue"):
        check_train_config(replace(cont, refit_mode="partial"))
    with pytest.raises(RecsysError, match=r"train.refit_lr_scale must be in \(0, 1\], got 0"):
        check_train_config(replace(cont, refit_lr_scale=0.0))
