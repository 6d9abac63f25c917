"""recsys export and recsys.serving against the real PostgreSQL and Redis (both stores)."""

from __future__ import annotations

import pytest
import redis

from recsys import schema as S
from recsys.cli import main
from recsys.export import export, rollback
from recsys.serving import open_store
from tests.export.nights import COLD_USER, parquet_list, publish_night, user_ids

D1, D2, D3 = "2026-01-01", "2026-01-02", "2026-01-03"


def _lists(store, users) -> dict:
    return {u: [(r.item_id, r.score, r.source) for r in store.recommend(u, n=100)] for u in users}


def _parquet(folder) -> dict:
    return {u: parquet_list(folder, u) for u in user_ids().to_pylist()}


def _same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for u in want:
        assert [(i, s) for i, _, s in got[u]] == [(i, s) for i, _, s in want[u]], u
        assert [pytest.approx(x) for _, x, _ in got[u]] == [x for _, x, _ in want[u]], u


def test_store_equals_parquet_then_rollback(tmp_path, store_url):
    root = str(tmp_path / "var")
    first = publish_night(root, D1, seed=0)
    out = export(store_url, root)
    assert (out["generation"], out["switched"], out["rows"]) == (1, True, 65)
    store = open_store(store_url)
    users = user_ids().to_pylist()
    _same(_lists(store, users), _parquet(first))
    assert {r.model_version for u in users for r in store.recommend(u)} == {f"fake-{D1}-r0"}
    second = publish_night(root, D2, seed=1)
    assert export(store_url, root)["switched"]
    _same(_lists(store, users), _parquet(second))
    assert store.health()["ds"] == D2
    back = rollback(store_url)
    assert (back["generation"], back["ds"]) == (1, D1)
    _same(_lists(store, users), _parquet(first))
    store.close()


def test_unknown_user_gets_the_popular_list(tmp_path, store_url):
    root = str(tmp_path / "var")
    publish_night(root, D1, seed=0)
    export(store_url, root)
    store = open_store(store_url)
    rows = store.recommend(123456, n=3)
    assert [r.source for r in rows] == [S.SOURCE_POPULAR] * 3
    # The cold user of the table got the popularity list from scoring: the same items.
    cold = [r.item_id for r in store.recommend(COLD_USER, n=3)]
    assert [r.item_id for r in rows] == cold
    assert [r.rank for r in rows] == [1, 2, 3]
    near = store.similar(1000, n=2)
    assert [(r.item_id, r.rank) for r in near] == [(1001, 1), (1002, 2)]
    assert store.similar(424242) == []
    store.close()


def test_rerun_is_a_no_op_and_older_ds_does_not_move_back(tmp_path, store_url):
    root = str(tmp_path / "var")
    publish_night(root, D2, seed=1)
    first = export(store_url, root)
    again = export(store_url, root)
    assert (again["generation"], again["switched"]) == (first["generation"], False)
    publish_night(root, D1, seed=0)  # a backfill: _LATEST stays at D2
    older = export(store_url, root, ds=D1)
    assert older["switched"] is False
    store = open_store(store_url)
    assert store.health()["ds"] == D2
    forced = export(store_url, root, ds=D1, backwards=True)
    assert forced["switched"] and store.health()["ds"] == D1
    store.close()


def test_keep_drops_the_oldest_generations(tmp_path, store_url):
    root = str(tmp_path / "var")
    for seed, ds in enumerate((D1, D2, D3)):
        publish_night(root, ds, seed=seed)
        out = export(store_url, root, keep=2)
    assert out["dropped"] == [1]
    if store_url.startswith("redis"):  # expiring, not deleted: a reader may hold its number
        client = redis.Redis.from_url(store_url)
        ttls = {client.ttl(k) for k in client.scan_iter("recsys:g1:*")}
        assert ttls and all(0 < t <= 3600 for t in ttls)
    rollback(store_url)
    with pytest.raises(Exception, match="nothing to roll back to"):
        rollback(store_url)


def test_manifest_mismatch_drops_the_generation(tmp_path, store_url, capsys):
    root = str(tmp_path / "var")
    publish_night(root, D1, seed=0)
    export(store_url, root)
    publish_night(root, D2, seed=1, rows_lie=3)
    code = main(["export", "--to", store_url, "--root", root])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "holds 65 rows" in err[-1] and "say 68" in err[-1] and "current generation" in err[-1]
    store = open_store(store_url)
    assert store.health()["ds"] == D1
    store.close()
    publish_night(root, D3, seed=2)
    assert export(store_url, root)["generation"] == 3 if "redis" in store_url else 2


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres@127.0.0.1:1/x", "redis://127.0.0.1:1/8",
     "postgresql://nobody_here@127.0.0.1:5432/postgres"],
)  # fmt: skip
def test_bad_server_is_one_sentence(tmp_path, url, capsys):
    root = str(tmp_path / "var")
    publish_night(root, D1, seed=0)
    assert main(["export", "--to", url, "--root", root]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recsys export: error: cannot use the")


def test_cli_rollback(tmp_path, store_url, capsys):
    root = str(tmp_path / "var")
    publish_night(root, D1, seed=0)
    publish_night(root, D2, seed=1)
    assert main(["export", "--to", store_url, "--root", root, "--ds", D1]) == 0
    assert main(["export", "--to", store_url, "--root", root]) == 0
    capsys.readouterr()
    assert main(["export", "--to", store_url, "--rollback"]) == 0
    assert f"fake-{D1}-r0, ds={D1}) is current again" in capsys.readouterr().out
    assert main(["export", "--to", store_url, "--rollback"]) == 2
    assert "nothing to roll back to" in capsys.readouterr().err


def test_cli_recommend_from_store(tmp_path, store_url, capsys):
    root = str(tmp_path / "var")
    publish_night(root, D1, seed=0)
    assert main(["export", "--to", store_url, "--root", root]) == 0
    capsys.readouterr()
    assert main(["recommend", "--from", store_url, "--user", "1"]) == 0
    from_store = capsys.readouterr().out
    assert main(["recommend", "--root", root, "--user", "1"]) == 0
    assert capsys.readouterr().out == from_store
