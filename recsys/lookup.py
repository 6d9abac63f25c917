"""Reading the published tables back: one user's list, and the end-of-run summary.

Everything goes through ``recommendations/_LATEST`` (via :mod:`recsys.storage`), so what is shown
is what consumers of the table read. pyarrow and pandas only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from recsys import schema as S
from recsys import storage
from recsys.errors import RecsysError
from recsys.manifests import ModelManifest, RecommendationsManifest


def _cast_user(value: str, typ: pa.DataType, table: Path) -> Any:
    """``--user`` as the table's id type; a number outside that type's range is no user of it
    (None), not an overflow."""
    if pa.types.is_integer(typ):
        try:
            number = int(value)
        except ValueError:
            raise RecsysError(
                f"user ids of {table} are integers, got {value!r}; pass a number"
            ) from None
        bits = typ.bit_width
        lo, hi = (
            (0, 2**bits - 1)
            if pa.types.is_unsigned_integer(typ)
            else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        )
        return number if lo <= number <= hi else None
    return value


def user_recommendations(root: str, user: str) -> tuple[pd.DataFrame, RecommendationsManifest]:
    """The published list of ``user`` (original id, as text) and the table's manifest."""
    storage.check_root(root, ("recommendations",), write=False)
    folder = storage.latest(root, "recommendations")
    manifest = RecommendationsManifest.read(folder)
    data = pads.dataset(folder / "table", format="parquet")
    uid = _cast_user(user, data.schema.field(S.USER_ID).type, folder)
    columns = list(S.RECOMMENDATIONS_COLUMNS)
    if uid is None:  # beyond the id type: nobody has it
        rows = data.schema.empty_table().select(columns).to_pandas()
    else:
        rows = data.to_table(columns=columns, filter=pads.field(S.USER_ID) == uid).to_pandas()
    if rows.empty:
        raise RecsysError(
            f"user {user!r} is not in the published table {folder} "
            f"({manifest.rows:,} rows); check the id"
        )
    return rows.sort_values(S.RANK).reset_index(drop=True), manifest


def top_rated(prepared: Path, users: list[Any], n: int) -> dict[Any, list[str]]:
    """Each user's own ``n`` highest-rated titles (ties: most recent first), by original id."""
    ratings = pads.dataset(prepared / "ratings", format="parquet", partitioning="hive")
    user_map = pads.dataset(prepared / "users", format="parquet").to_table().to_pandas()
    items = pads.dataset(prepared / "items", format="parquet").to_table(
        columns=[S.ITEM_IDX, S.TITLE]
    )
    wanted = user_map[user_map[S.USER_ID].isin(users)]
    rows = ratings.to_table(
        columns=[S.USER_IDX, S.ITEM_IDX, S.RATING, S.TS],
        filter=pads.field(S.USER_IDX).isin(wanted[S.USER_IDX].tolist()),
    ).to_pandas()
    rows = rows.merge(items.to_pandas(), on=S.ITEM_IDX).merge(wanted, on=S.USER_IDX)
    rows = rows.sort_values([S.USER_ID, S.RATING, S.TS], ascending=[True, False, False])
    return {u: g[S.TITLE].head(n).tolist() for u, g in rows.groupby(S.USER_ID, sort=False)}


def summary(root: str, n_users: int = 3, n_titles: int = 5) -> dict[str, Any]:
    """What a person wants after a nightly run: where things are, metrics, a few example lists."""
    storage.check_root(root, storage.TABLES, write=False)
    folder = storage.latest(root, "recommendations")
    manifest = RecommendationsManifest.read(folder)
    model = ModelManifest.read(manifest.model.folder)
    prepared = manifest.prepared.folder
    out: dict[str, Any] = {"tables": {}, "table": manifest, "model": model}
    for table in storage.TABLES:
        try:
            out["tables"][table] = str(storage.latest(root, table))
        except RecsysError:
            continue
    data = pads.dataset(folder / "table", format="parquet")
    # Users with the model's lists and the most history: their own favourites say the most.
    table = data.to_table(columns=[S.USER_ID, S.RANK, S.TITLE, S.SOURCE]).to_pandas()
    modelled = table[table[S.SOURCE] == S.SOURCE_MODEL]
    pool = modelled if not modelled.empty else table
    # prepare counted each user's rows (after dedupe and k-core): the users table has them.
    per_user = (
        pads.dataset(prepared / "users", format="parquet")
        .to_table(columns=[S.USER_ID, S.N_RATINGS])
        .to_pandas()
        .rename(columns={S.N_RATINGS: "n"})
    )
    per_user = per_user[per_user[S.USER_ID].isin(pool[S.USER_ID].unique())]
    # Three users spread over the activity range: a heavy, a median and a light one.
    per_user = per_user.sort_values(["n", S.USER_ID], ascending=[False, True])
    if len(per_user) > n_users:
        picks = [int(round(q * (len(per_user) - 1))) for q in (0.1, 0.5, 0.9)[:n_users]]
        per_user = per_user.iloc[sorted(set(picks))]
    users = per_user[S.USER_ID].tolist()
    own = top_rated(prepared, users, n_titles)
    out["examples"] = [
        {
            "user": u,
            "ratings": int(per_user.loc[per_user[S.USER_ID] == u, "n"].iloc[0]),
            "recommended": pool[pool[S.USER_ID] == u]
            .sort_values(S.RANK)[S.TITLE]
            .head(n_titles)
            .tolist(),
            "liked": own.get(u, []),
        }
        for u in users
    ]
    return out
