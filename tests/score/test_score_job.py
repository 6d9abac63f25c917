"""The Spark scoring job on a small log: exact top-N, popularity for cold users, bad artifacts."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

pytest.importorskip("tensorflow")

from recsys import schema as S  # noqa: E402
from recsys import storage  # noqa: E402
from recsys.artifact import Scorer  # noqa: E402
from recsys.errors import RecsysError  # noqa: E402
from recsys.manifests import PreparedManifest  # noqa: E402

TOP = 5


@pytest.fixture(scope="module")
def scored(spark, tmp_path_factory):
    """60 users x 40 items, plus user 999 whose one rating (of an item no one else rated) is
    held out: the model never saw them, so they get the popularity list."""
    from scoredata import trained_root

    from recsys.score.job import run_score

    cfg = trained_root(tmp_path_factory.mktemp("score"), "2026-03-01", seed=0, cold_user=999)
    model = storage.latest(cfg.root, "models")
    result = run_score(cfg, "2026-03-02", n=TOP)
    table = pq.read_table(result.path / "table").to_pandas()
    return cfg, model, result, table


def test_every_user_gets_the_exact_top_n(scored):
    cfg, model_dir, result, table = scored
    prepared = storage.resolve(cfg.root, "prepared")
    manifest = storage.read_manifest(prepared)
    users = pq.read_table(prepared / "users").to_pandas().set_index(S.USER_ID)[S.USER_IDX]
    items = pq.read_table(prepared / "items").to_pandas()
    item_idx = items.set_index(S.ITEM_ID)[S.ITEM_IDX]
    ratings = pq.read_table(prepared / "ratings").to_pandas()
    seen = ratings.groupby(S.USER_IDX)[S.ITEM_IDX].apply(set).to_dict()
    arrays = Scorer.load(model_dir / "arrays.npz").arrays
    # float64 brute force of every pair (biased-mf ranking: dot + item bias)
    full = arrays["user_factors"].astype(np.float64) @ arrays["item_factors"].astype(np.float64).T
    full += arrays["item_bias"].astype(np.float64)[None, :]
    assert table[S.USER_ID].nunique() == manifest["n_users"]  # every user is present
    model_rows = table[table["source"] == "model"]
    for user_id, rows in model_rows.groupby(S.USER_ID):
        u = users[user_id]
        rows = rows.sort_values("rank")
        assert rows["rank"].tolist() == list(range(1, TOP + 1))
        got = [item_idx[i] for i in rows[S.ITEM_ID]]
        cands = [i for i in range(manifest["n_items"]) if i not in seen[u]]
        assert got == sorted(cands, key=lambda i: (-full[u, i], i))[:TOP]
        assert np.allclose(rows["score"], full[u, got], atol=1e-4)
    assert set(table["model_version"]) == {storage.read_manifest(model_dir)["model_version"]}
    titles = items.set_index(S.ITEM_ID)[S.TITLE]  # a bare log has no titles: all missing
    got, want = table[S.TITLE].to_numpy(), titles[table[S.ITEM_ID]].to_numpy()
    assert ((got == want) | (pd.isna(got) & pd.isna(want))).all()


def test_cold_user_gets_the_popularity_list(scored):
    cfg, _, result, table = scored
    cold = table[table[S.USER_ID] == 999].sort_values("rank")
    assert set(cold["source"]) == {"popular"} and len(cold) == TOP
    prepared = storage.resolve(cfg.root, "prepared")
    ratings = pq.read_table(prepared / "ratings").to_pandas()
    train = ratings[ratings[S.SPLIT] == "train"]
    counts = train.groupby(S.ITEM_IDX).size()
    order = sorted(counts.index, key=lambda i: (-counts[i], i))[:TOP]
    items = pq.read_table(prepared / "items").to_pandas().set_index(S.ITEM_IDX)[S.ITEM_ID]
    assert cold[S.ITEM_ID].tolist() == [items[i] for i in order]
    n_model_users = table.loc[table["source"] == "model", S.USER_ID].nunique()
    assert result.manifest.rows_by_source == {"model": TOP * n_model_users, "popular": TOP}


def test_table_is_committed_but_not_published(scored):
    cfg, _, result, _ = scored
    assert (result.path / "manifest.json").is_file()
    assert storage.resolve(cfg.root, "recommendations", "2026-03-02") == result.path
    with pytest.raises(RecsysError, match="no complete recommendations run"):
        storage.latest(cfg.root, "recommendations")  # only `recsys publish` moves _LATEST
    assert json.loads((result.path / "manifest.json").read_text())["top_n"] == TOP


def test_bad_artifacts_are_one_sentence(scored, tmp_path):
    from recsys.score.job import load_artifact

    cfg, model_dir, _, _ = scored
    prepared = PreparedManifest.read(storage.resolve(cfg.root, "prepared"))
    with pytest.raises(RecsysError, match="arrays.npz is missing"):
        load_artifact(tmp_path, prepared)
    (tmp_path / "arrays.npz").write_bytes(b"not a zip")
    with pytest.raises(RecsysError, match="is not a readable model artifact"):
        load_artifact(tmp_path, prepared)
    other = replace(prepared, n_items=prepared.n_items + 1)
    with pytest.raises(RecsysError, match="scores .* items but the prepared run has"):
        load_artifact(model_dir, other)


def test_publish_validates_then_moves_latest(scored, capsys, tmp_path):
    from recsys.cli import main

    cfg, _, result, table = scored
    out = tmp_path / "result.json"
    args = ["--ds", "2026-03-02", "--result-file", str(out)]
    assert main(["publish", "--root", cfg.root, *args]) == 0
    assert "published" in capsys.readouterr().out
    assert storage.latest(cfg.root, "recommendations") == result.path
    # What the DAG's publish task reads (not the printed line).
    got = json.loads(out.read_text())
    assert got["path"] == str(result.path) and got["moved"] is True
    assert (got["users"], got["rows"]) == (table[S.USER_ID].nunique(), len(table))


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        ("seen", "seen items"),
        ("drop_user", "missing users"),
        ("rank", "ranks"),
        ("score", "scores"),
        ("short", "list length"),
    ],
)
def test_publish_refuses_a_bad_table(scored, tamper, check, capsys):
    import shutil

    from recsys.cli import main

    cfg, _, result, table = scored
    before = storage.resolve(cfg.root, "recommendations", "2026-03-02")
    bad = table.copy()
    first_user = bad.loc[bad["source"] == "model", S.USER_ID].iloc[0]
    rows = bad[bad[S.USER_ID] == first_user].sort_values("rank").index  # rank 1 .. TOP
    if tamper == "seen":
        prepared = storage.resolve(cfg.root, "prepared")
        rated = pq.read_table(prepared / "ratings").to_pandas()
        users = pq.read_table(prepared / "users").to_pandas().set_index(S.USER_ID)[S.USER_IDX]
        items = pq.read_table(prepared / "items").to_pandas().set_index(S.ITEM_IDX)[S.ITEM_ID]
        seen_item = rated.loc[rated[S.USER_IDX] == users[first_user], S.ITEM_IDX].iloc[0]
        bad.loc[rows[0], S.ITEM_ID] = items[seen_item]
    elif tamper == "drop_user":
        bad = bad.drop(rows)
    elif tamper == "rank":
        bad.loc[rows[0], "rank"] = 7
    elif tamper == "score":
        bad.loc[rows[-1], "score"] = bad.loc[rows, "score"].max() + 1
    else:
        bad = bad.drop(rows[-1])
    folder = result.path.parent / f"run=bad-{tamper}"
    shutil.copytree(result.path, folder)
    shutil.rmtree(folder / "table")
    (folder / "table").mkdir()
    bad.to_parquet(folder / "table" / "part-0.parquet")
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "run": f"bad-{tamper}"}))
    code = main(["publish", "--root", cfg.root, "--ds", "2026-03-02", "--run", f"bad-{tamper}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert f"failed the {check} check for 1 user(s)" in err and err.count("\n") == 0
    assert "it was not published" in err
    # _LATEST still names whatever it named before (nothing, or the good table).
    latest = storage.resolve(cfg.root, "recommendations", "2026-03-02")
    assert latest == before


def test_publishing_an_older_ds_leaves_latest_unless_told(scored, capsys):
    import shutil

    from recsys.cli import main

    cfg, _, result, _ = scored
    assert main(["publish", "--root", cfg.root, "--ds", "2026-03-02"]) == 0
    older = storage.local_root(cfg.root) / "recommendations" / "ds=2026-03-01" / "run=backfill"
    shutil.copytree(result.path, older)
    manifest = json.loads((older / "manifest.json").read_text())
    (older / "manifest.json").write_text(
        json.dumps({**manifest, "ds": "2026-03-01", "run": "backfill"})
    )
    capsys.readouterr()
    assert main(["publish", "--root", cfg.root, "--ds", "2026-03-01", "--run", "backfill"]) == 0
    assert "names a newer ds and stays" in capsys.readouterr().out
    assert storage.latest(cfg.root, "recommendations") == result.path
    args = ["--ds", "2026-03-01", "--run", "backfill", "--set", "move_latest_backwards=true"]
    assert main(["publish", "--root", cfg.root, *args]) == 0
    assert storage.latest(cfg.root, "recommendations") == older
    assert main(["publish", "--root", cfg.root, "--ds", "2026-03-02"]) == 0  # as it was


def test_publish_refuses_a_table_covering_far_fewer_users_than_the_live_one(scored):
    from recsys.score.publish import check_coverage, published_users

    cfg, _, result, table = scored
    storage.advance_latest(
        result.path.parent.parent, "2026-03-02", result.path.name[4:], result.path
    )
    live, users = published_users(cfg.root)
    assert (live, users) == (result.path, table[S.USER_ID].nunique())
    other = result.path.parent / "run=smaller"
    half = users // 2 - 1
    with pytest.raises(RecsysError) as refused:
        check_coverage(other, half, cfg.root, 0.5)
    message = str(refused.value)
    assert f"covers {half:,} users, below publish.min_share=50% of the {users:,}" in message
    assert "it was not published" in message and "--min-share 0" in message
    check_coverage(other, users // 2 + 1, cfg.root, 0.5)  # above the share: fine
    check_coverage(other, 1, cfg.root, 0.0)  # the guard off


def test_extra_keeps_more_items_a_user_for_read_time_filters(scored):
    from recsys.manifests import RecommendationsManifest
    from recsys.score.job import run_score

    cfg, _, _, table = scored
    result = run_score(cfg, "2026-03-04", n=TOP - 2, extra=2)
    longer = pq.read_table(result.path / "table").to_pandas()
    manifest = RecommendationsManifest.read(result.path)
    assert (manifest.top_n, manifest.serve_extra) == (TOP, 2)
    key = [S.USER_ID, S.RANK]
    got = longer.sort_values(key)[[*key, S.ITEM_ID]].reset_index(drop=True)
    want = table.sort_values(key)[[*key, S.ITEM_ID]].reset_index(drop=True)
    assert got.equals(want)  # the top TOP - 2, then the 2 the model ranks next


def test_a_prepared_run_without_seen_lists_scores_and_publishes_the_same_table(scored):
    """Runs prepared before ``seen/`` existed: score groups ``ratings/``, publish reads them."""
    import shutil

    from recsys.score.job import run_score
    from recsys.score.publish import validate

    cfg, _, result, table = scored
    prepared = storage.resolve(cfg.root, "prepared")
    assert PreparedManifest.read(prepared).has_seen
    manifest_text = (prepared / "manifest.json").read_text()
    older = json.loads(manifest_text)
    del older["files"]["seen"]
    shutil.move(prepared / "seen", prepared.parent / "_seen-aside")
    try:
        (prepared / "manifest.json").write_text(json.dumps(older))
        assert not PreparedManifest.read(prepared).has_seen
        again = run_score(cfg, "2026-03-05", n=TOP)
        got = pq.read_table(again.path / "table").to_pandas()
        key = [S.USER_ID, "rank"]
        want = table.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True), want)
        assert validate(again.path) == validate(result.path)
    finally:
        shutil.move(prepared.parent / "_seen-aside", prepared / "seen")
        (prepared / "manifest.json").write_text(manifest_text)
