"""End to end: a root scored and published by the real steps, exported to both stores.

The night's lists in each store equal the Parquet table for every user; a user the model never
saw and a user the table does not hold both get the popularity list (``source = popular``).
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

pytest.importorskip("tensorflow")

from recsys import schema as S  # noqa: E402

DS = "2026-03-02"


@pytest.fixture(scope="module")
def published(spark, tmp_path_factory):
    from scoredata import trained_root

    from recsys.score.job import run_score
    from recsys.score.publish import publish

    cfg = trained_root(tmp_path_factory.mktemp("scored"), "2026-03-01", cold_user=999)
    run_score(cfg, DS, n=5, similar_items=3)
    publish(cfg.root, DS)
    return cfg.root


def test_scored_night_in_each_store_equals_the_table(published, store_url):
    from recsys.export import export
    from recsys.serving import open_store
    from recsys.storage import latest

    out = export(store_url, published)
    table = pq.read_table(latest(published, "recommendations") / "table").to_pandas()
    assert out["rows"] == len(table) and out["switched"]
    store = open_store(store_url)
    for user, rows in table.sort_values(S.RANK).groupby(S.USER_ID):
        got = store.recommend(user, n=100)
        assert [r.item_id for r in got] == rows[S.ITEM_ID].tolist(), user
        assert [r.source for r in got] == rows[S.SOURCE].tolist(), user
        assert [r.score for r in got] == pytest.approx(rows[S.SCORE].tolist()), user
        assert {r.model_version for r in got} == set(rows[S.MODEL_VERSION])
    cold = [(r.item_id, r.source) for r in store.recommend(999)]
    assert {s for _, s in cold} == {S.SOURCE_POPULAR}
    stranger = [(r.item_id, r.source) for r in store.recommend(123456789)]
    assert stranger == cold  # the cold user saw only an item nobody else rated
    some_item = int(table[S.ITEM_ID].iloc[0])
    assert len(store.similar(some_item, n=3)) == 3
    store.close()
