"""A tiny published root written through the library's own writers (no Spark, no training).

``publish_night`` writes a prepared run (ratings by split, users, items), a model manifest, a
recommendations run (each user's top ``n`` unseen items by a seeded score; a user without
training rows gets the popularity list, as the scoring job does) and its similar_items run, then
moves ``recommendations/_LATEST`` as ``recsys publish`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recsys import schema as S
from recsys import storage
from recsys.manifests import (
    ModelManifest,
    PreparedManifest,
    RecommendationsManifest,
    RunRef,
    SimilarItemsManifest,
)

N_USERS, N_ITEMS = 12, 30
COLD_USER = 99  # one rating, held out: the model never saw them


def _ratings(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pairs = {(int(u), int(rng.zipf(1.4) % N_ITEMS)) for u in rng.integers(0, N_USERS, 150)}
    rows = pd.DataFrame(sorted(pairs), columns=[S.USER_IDX, S.ITEM_IDX])
    rows[S.SPLIT] = np.where(np.arange(len(rows)) % 4 == 0, "test", "train")
    cold = pd.DataFrame({S.USER_IDX: [N_USERS], S.ITEM_IDX: [0], S.SPLIT: ["test"]})
    return pd.concat([rows, cold], ignore_index=True)


def _write_prepared(root: str, ds: str, run: str, ratings: pd.DataFrame) -> Path:
    paths = storage.new_run(root, "prepared", ds, run)
    for split, part in ratings.groupby(S.SPLIT):
        folder = paths.staging / "ratings" / f"split={split}"
        folder.mkdir(parents=True)
        table = pa.table(
            {
                S.USER_IDX: part[S.USER_IDX].to_numpy(np.int32),
                S.ITEM_IDX: part[S.ITEM_IDX].to_numpy(np.int32),
                S.RATING: np.ones(len(part), np.float32),
                S.TS: np.arange(len(part), dtype=np.int64),
            }
        )
        pq.write_table(table, folder / "part-0.parquet")
    (paths.staging / "users").mkdir()
    (paths.staging / "items").mkdir()
    users = pa.table({S.USER_ID: user_ids(), S.USER_IDX: pa.array(range(N_USERS + 1), pa.int32())})
    pq.write_table(users, paths.staging / "users" / "part-0.parquet")
    items = pa.table(
        {
            S.ITEM_ID: pa.array([1000 + i for i in range(N_ITEMS)], pa.int64()),
            S.ITEM_IDX: pa.array(range(N_ITEMS), pa.int32()),
            S.TITLE: [f"Title {i}" for i in range(N_ITEMS)],
        }
    )
    pq.write_table(items, paths.staging / "items" / "part-0.parquet")
    counts = ratings[S.SPLIT].value_counts().to_dict()
    manifest = PreparedManifest(
        ds=ds, run=paths.run, n_users=N_USERS + 1, n_items=N_ITEMS, counts=counts
    )
    return storage.commit(paths, manifest)


def user_ids() -> pa.Array:
    return pa.array([7 * u + 1 for u in range(N_USERS)] + [COLD_USER], pa.int64())


def _lists(ratings: pd.DataFrame, n: int, seed: int, version: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    scores = rng.random((N_USERS + 1, N_ITEMS))
    train = ratings[ratings[S.SPLIT] == "train"]
    popular = train[S.ITEM_IDX].value_counts()
    popular = sorted(popular.index, key=lambda i: (-popular[i], i))
    rows = []
    for u in range(N_USERS + 1):
        seen = set(ratings.loc[ratings[S.USER_IDX] == u, S.ITEM_IDX])
        if u in set(train[S.USER_IDX]):
            order = [int(i) for i in np.argsort(-scores[u]) if i not in seen][:n]
            got = [(i, float(scores[u, i]), S.SOURCE_MODEL) for i in order]
        else:
            order = [i for i in popular if i not in seen][:n]
            got = [(i, float((train[S.ITEM_IDX] == i).sum()), S.SOURCE_POPULAR) for i in order]
        uid = user_ids()[u].as_py()
        rows += [(uid, r + 1, 1000 + i, s, src) for r, (i, s, src) in enumerate(got)]
    out = pd.DataFrame(rows, columns=[S.USER_ID, S.RANK, S.ITEM_ID, S.SCORE, S.SOURCE])
    out[S.MODEL_VERSION] = version
    out[S.TITLE] = [f"Title {i - 1000}" for i in out[S.ITEM_ID]]
    return out


def publish_night(root: str, ds: str, seed: int = 0, n: int = 5, rows_lie: int = 0) -> Path:
    """Write and publish one night; returns the recommendations run folder. ``rows_lie`` adds to
    the manifest's row count (a manifest that does not match its table)."""
    run = f"r{seed}"
    ratings = _ratings(seed)
    prepared = _write_prepared(root, ds, run, ratings)
    prep_manifest = PreparedManifest.read(prepared)
    version = f"fake-{ds}-{run}"
    mpaths = storage.new_run(root, "models", ds, run)
    model = ModelManifest(
        ds=ds, run=run, model_version=version, prepared=RunRef.of(prep_manifest, prepared)
    )
    model_dir = storage.commit(mpaths, model)
    lists = _lists(ratings, n, seed, version)
    paths = storage.new_run(root, "recommendations", ds, run)
    (paths.staging / "table").mkdir()
    table = pa.Table.from_pandas(lists[list(S.RECOMMENDATIONS_COLUMNS)], preserve_index=False)
    table = table.set_column(3, S.SCORE, table[S.SCORE].cast(pa.float32()))
    pq.write_table(table, paths.staging / "table" / "part-0.parquet")
    manifest = RecommendationsManifest(
        ds=ds, run=run, top_n=n, model=RunRef.of(model, model_dir), model_version=version,
        prepared=RunRef.of(prep_manifest, prepared), rows=len(lists) + rows_lie,
        rows_by_source=lists[S.SOURCE].value_counts().to_dict(),
    )  # fmt: skip
    _write_similar(root, ds, run, version, RunRef.of(model, model_dir), manifest.prepared)
    final = storage.commit(paths, manifest, move_table_latest=False)
    storage.advance_latest(final.parent.parent, ds, run, final)
    return final


def _write_similar(root: str, ds: str, run: str, version: str, model, prepared) -> None:
    paths = storage.new_run(root, "similar_items", ds, run)
    (paths.staging / "table").mkdir()
    rows = [(1000 + i, r + 1, 1000 + (i + r + 1) % N_ITEMS, 1.0 - r / 10) for i in range(N_ITEMS)
            for r in range(3)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=[S.ITEM_ID, S.RANK, S.SIMILAR_ITEM_ID, S.SCORE])
    frame[S.TITLE] = [f"Title {i - 1000}" for i in frame[S.ITEM_ID]]
    frame[S.SIMILAR_TITLE] = [f"Title {i - 1000}" for i in frame[S.SIMILAR_ITEM_ID]]
    frame[S.MODEL_VERSION] = version
    pq.write_table(
        pa.Table.from_pandas(frame, preserve_index=False), paths.staging / "table" / "p.parquet"
    )
    manifest = SimilarItemsManifest(
        ds=ds, run=run, top_n=3, model=model, model_version=version, prepared=prepared,
        rows=len(frame),
    )  # fmt: skip
    storage.commit(paths, manifest)


def parquet_list(folder: Path, user) -> list[tuple]:
    """One user's published list as (item_id, score, source) in rank order."""
    frame = pq.read_table(folder / "table").to_pandas()
    rows = frame[frame[S.USER_ID] == user].sort_values(S.RANK)
    return [(int(r.item_id), float(r.score), r.source) for r in rows.itertuples()]


def publish_big(root: str, ds: str, users: int, items: int = 3706, n: int = 10, seed: int = 0,
                version: str = "") -> Path:  # fmt: skip
    """A night at a given shape, built vectorised (benchmarks, kill tests): ``users`` users of
    ``n`` random items each, every user with one training row; no similar_items."""
    rng = np.random.default_rng(seed)
    run = f"b{seed}"
    version = version or f"big-{ds}-{run}"
    seen = rng.integers(0, items, users)
    ratings = pd.DataFrame({S.USER_IDX: np.arange(users), S.ITEM_IDX: seen, S.SPLIT: "train"})
    paths = storage.new_run(root, "prepared", ds, run)
    folder = paths.staging / "ratings" / "split=train"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({
        S.USER_IDX: ratings[S.USER_IDX].to_numpy(np.int32),
        S.ITEM_IDX: ratings[S.ITEM_IDX].to_numpy(np.int32),
        S.RATING: np.ones(users, np.float32), S.TS: np.arange(users, dtype=np.int64),
    }), folder / "part-0.parquet")  # fmt: skip
    for name, table in (
        ("users", pa.table({S.USER_ID: pa.array(np.arange(users) + 1, pa.int64()),
                            S.USER_IDX: pa.array(np.arange(users), pa.int32())})),
        ("items", pa.table({S.ITEM_ID: pa.array(np.arange(items) + 1, pa.int64()),
                            S.ITEM_IDX: pa.array(np.arange(items), pa.int32()),
                            S.TITLE: [f"Movie {i} (1999)" for i in range(items)]})),
    ):  # fmt: skip
        (paths.staging / name).mkdir()
        pq.write_table(table, paths.staging / name / "part-0.parquet")
    prepared = storage.commit(paths, PreparedManifest(
        ds=ds, run=run, n_users=users, n_items=items, counts={"train": users}))  # fmt: skip
    pm = PreparedManifest.read(prepared)
    model = ModelManifest(ds=ds, run=run, model_version=version, prepared=RunRef.of(pm, prepared))
    model_dir = storage.commit(storage.new_run(root, "models", ds, run), model)
    offsets = rng.choice(np.arange(1, items), n, replace=False)  # never the seen item
    item_idx = (seen[:, None] + offsets[None, :]) % items  # (users, n)
    table = pa.table({
        S.USER_ID: pa.array(np.repeat(np.arange(users) + 1, n), pa.int64()),
        S.RANK: pa.array(np.tile(np.arange(1, n + 1), users), pa.int32()),
        S.ITEM_ID: pa.array(item_idx.ravel() + 1, pa.int64()),
        S.SCORE: pa.array(np.sort(rng.random((users, n)), axis=1)[:, ::-1].ravel(), pa.float32()),
        S.SOURCE: pa.array([S.SOURCE_MODEL] * (users * n)),
        S.MODEL_VERSION: pa.array([version] * (users * n)),
        S.TITLE: pa.array([f"Movie {i} (1999)" for i in item_idx.ravel()]),
    })  # fmt: skip
    paths = storage.new_run(root, "recommendations", ds, run)
    (paths.staging / "table").mkdir()
    pq.write_table(table, paths.staging / "table" / "part-0.parquet")
    manifest = RecommendationsManifest(
        ds=ds, run=run, top_n=n, model=RunRef.of(model, model_dir), model_version=version,
        prepared=RunRef.of(pm, prepared), rows=users * n, rows_by_source={"model": users * n},
    )  # fmt: skip
    final = storage.commit(paths, manifest, move_table_latest=False)
    storage.advance_latest(final.parent.parent, ds, run, final)
    return final
