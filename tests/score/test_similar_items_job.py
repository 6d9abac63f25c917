"""The similar_items table of the scoring job: N exact neighbours per item, ids and titles, no self,
excluded items nowhere, committed with its _LATEST moved (recommendations' is not)."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsys import schema as S
from recsys import storage
from recsys.config import load_config
from recsys.errors import RecsysError

N_USERS, N_ITEMS, NEIGHBOURS, RARE = 25, 12, 4, 11


@pytest.fixture(scope="module")
def similar(spark, tmp_path_factory):
    """A MovieLens-1m-format log (titles in movies.dat) and a random biased-MF model of its
    shape, scored with --similar-items 4 --min-item-ratings 2: item RARE has one rating."""
    from recsys.score.job import run_score

    base = tmp_path_factory.mktemp("similar")
    rng = np.random.default_rng(1)
    data = base / "ml"
    data.mkdir()
    lines, ts = [], 1000
    for u in range(1, N_USERS + 1):
        for i in rng.choice(RARE, size=6, replace=False):  # items 0..10, never RARE
            lines.append(f"{u}::{100 + i}::{rng.integers(1, 6)}::{ts}")
            ts += 1
    lines.append(f"1::{100 + RARE}::5::{ts}")
    (data / "ratings.dat").write_text("\n".join(lines) + "\n")
    movies = [f"{100 + i}::Movie {i} (2000)::Drama" for i in range(N_ITEMS)]
    (data / "movies.dat").write_text("\n".join(movies) + "\n")
    cfg = load_config(
        root=str(base / "var"),
        source={"input": str(data)},
        prepare={"split": "random", "test_fraction": 0.2, "val_fraction": 0.0},
        spark={"master": "local[2]", "shuffle_partitions": 2},
    )
    from recsys.prepare.job import run_prepare

    prepared = run_prepare(cfg, "2026-04-01").path
    m = storage.read_manifest(prepared)
    assert (m["n_users"], m["n_items"]) == (N_USERS, N_ITEMS)
    arrays = {
        "family": np.array("biased-mf"),
        "objective": np.array("ranking"),
        "user_factors": rng.normal(size=(N_USERS, 3)).astype(np.float32),
        "item_factors": rng.normal(size=(N_ITEMS, 3)).astype(np.float32),
        "user_bias": np.zeros(N_USERS, np.float32),
        "item_bias": rng.normal(0, 5, N_ITEMS).astype(np.float32),  # must not matter
        "rating_min": np.float32(1),
        "rating_max": np.float32(5),
        "global_mean": np.float32(3),
        "offset": np.float32(0),
        "sigmoid": np.bool_(False),
    }
    paths = storage.new_run(cfg.root, "models", "2026-04-01", "m1")
    np.savez(paths.staging / "arrays.npz", **arrays)
    prep = {"ds": m["ds"], "run": m["run"], "path": str(prepared)}
    storage.commit(
        paths,
        {"ds": "2026-04-01", "run": "m1", "model_version": "biased-mf-m1", "prepared": prep},
    )
    result = run_score(cfg, "2026-04-02", n=3, min_item_ratings=2, similar_items=NEIGHBOURS)
    table = pq.read_table(result.similar.path / "table").to_pandas()
    items = pq.read_table(prepared / "items").to_pandas()
    return cfg, result, table, items, arrays


def test_every_kept_item_gets_its_exact_neighbours(similar):
    _, _, table, items, arrays = similar
    assert list(table.columns) == [
        S.ITEM_ID,
        "rank",
        "similar_item_id",
        "score",
        S.TITLE,
        "similar_title",
        "model_version",
    ]
    idx = items.set_index(S.ITEM_ID)[S.ITEM_IDX]
    rare = int(idx[100 + RARE])
    vecs = arrays["item_factors"].astype(np.float64)
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    cos = unit @ unit.T
    kept = [i for i in range(N_ITEMS) if i != rare]
    assert sorted(idx[table[S.ITEM_ID].unique()]) == kept  # the rare item has no list
    for item_id, rows in table.groupby(S.ITEM_ID):
        i = idx[item_id]
        rows = rows.sort_values("rank")
        assert rows["rank"].tolist() == list(range(1, NEIGHBOURS + 1))
        got = [idx[j] for j in rows["similar_item_id"]]
        assert i not in got and rare not in got  # never itself, never an excluded item
        want = sorted((j for j in kept if j != i), key=lambda j: (-cos[i, j], j))[:NEIGHBOURS]
        assert got == want
        assert np.allclose(rows["score"], cos[i, got], atol=1e-5)
    assert set(table["model_version"]) == {"biased-mf-m1"}


def test_titles_follow_their_ids(similar):
    _, _, table, _, _ = similar
    assert (table[S.TITLE] == "Movie " + (table[S.ITEM_ID] - 100).astype(str) + " (2000)").all()
    want = "Movie " + (table["similar_item_id"] - 100).astype(str) + " (2000)"
    assert (table["similar_title"] == want).all()


def test_committed_under_the_recommendations_run_and_latest_moved(similar):
    cfg, result, table, _, _ = similar
    sim = result.similar
    assert sim.path.parent.name == "ds=2026-04-02" and sim.path.name == f"run={result.manifest.run}"
    assert storage.latest(cfg.root, "similar_items") == sim.path
    m = storage.read_manifest(sim.path)
    assert m["rows"] == len(table) == (N_ITEMS - 1) * NEIGHBOURS
    assert m["vectors"] == "item_factors" and m["excluded_items"] == 1
    with pytest.raises(RecsysError, match="no complete recommendations run"):
        storage.latest(cfg.root, "recommendations")  # still only `recsys publish` moves that


def test_option_parses_and_negative_is_one_sentence(similar):
    from recsys.cli import build_parser
    from recsys.score.job import run_score

    args = build_parser().parse_args(["score", "--similar-items", "7"])
    assert args.similar_items == 7
    cfg = similar[0]
    with pytest.raises(RecsysError, match="--similar-items must be 0"):
        run_score(cfg, "2026-04-03", similar_items=-1)
