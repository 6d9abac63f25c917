"""``recsys publish``: validate a recommendations table, then point ``_LATEST`` at it.

A table that fails a check is never published, and the error says which check failed and for how
many users. The checks (on the table and the prepared run it was scored from):

* ``unknown ids``: every user_id and item_id exists in the prepared users / items tables;
* ``missing users``: every user of the prepared run has a list, except users without an unseen
  candidate (they rated every item): their list is empty by design, and counted
  (``empty_lists``);
* ``ranks``: each user's ranks are exactly 1..len(list);
* ``list length``: N rows per user, fewer only when the user has fewer unseen candidates;
* ``seen items``: no item the user rated (in any split) is recommended;
* ``scores``: scores do not increase with the rank.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from recsys import schema as S
from recsys import storage
from recsys.errors import RecsysError
from recsys.integrity import IntegrityError, check_prepared
from recsys.manifests import PreparedManifest, RecommendationsManifest

log = logging.getLogger(__name__)


def _frame(folder: Path, columns: list[str]) -> pd.DataFrame:
    return pq.read_table(folder, columns=columns).to_pandas()


def seen_keys(
    prepared: Path, manifest: PreparedManifest, n_users: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(items seen per user, sorted ``user_idx * width + item_idx`` keys of every seen pair):
    from the grouped ``seen/`` lists when prepare wrote them (already in key order), else from
    ``ratings/`` (older prepared runs)."""
    if manifest.has_seen:
        from recsys.prepare.seen import FOLDER, read_seen

        offsets, items = read_seen(prepared / FOLDER)
        per_user = np.diff(offsets)
        users = np.repeat(np.arange(len(per_user), dtype=np.int64), per_user)
        return per_user, users * width + items
    ratings = _frame(prepared / "ratings", [S.USER_IDX, S.ITEM_IDX])
    counts = ratings.groupby(S.USER_IDX).size().reindex(range(n_users), fill_value=0).to_numpy()
    keys = ratings[S.USER_IDX].to_numpy(np.int64) * width + ratings[S.ITEM_IDX].to_numpy()
    return counts, np.sort(keys)


def validate(run_dir: Path) -> dict[str, int]:
    """Check the table of a committed scoring run; returns counts, raises on the first failure."""
    manifest = RecommendationsManifest.read(run_dir)
    n = manifest.top_n
    prepared = manifest.prepared.folder
    prepared_manifest = PreparedManifest.read(prepared)
    check_prepared(prepared, prepared_manifest)
    table = _frame(run_dir / "table", [S.USER_ID, S.RANK, S.ITEM_ID, S.SCORE])
    users = _frame(prepared / "users", [S.USER_ID, S.USER_IDX])
    items = _frame(prepared / "items", [S.ITEM_ID, S.ITEM_IDX])
    width = len(items) + 1
    seen_count, seen = seen_keys(prepared, prepared_manifest, len(users), width)
    n_items = len(items) - manifest.excluded_items

    def fail(check: str, bad_users: int, detail: str) -> None:
        raise RecsysError(
            f"{run_dir} failed the {check} check for {bad_users} user(s): {detail}; "
            "it was not published"
        )

    u_idx = table[S.USER_ID].map(users.set_index(S.USER_ID)[S.USER_IDX])
    i_idx = table[S.ITEM_ID].map(items.set_index(S.ITEM_ID)[S.ITEM_IDX])
    unknown = u_idx.isna() | i_idx.isna()
    if unknown.any():
        fail("unknown ids", table.loc[unknown, S.USER_ID].nunique(), "ids not in the prepared run")
    table = table.assign(u=u_idx.astype(np.int64), i=i_idx.astype(np.int64))
    # Each prepared user's expected list length: N, or fewer unseen candidates (0: none).
    every = users[S.USER_IDX].to_numpy()
    expected = pd.Series(np.minimum(n, np.maximum(n_items - seen_count[every], 0)), index=every)
    listed = expected.index.isin(table["u"].unique())
    missing = int(np.count_nonzero(~listed & (expected.to_numpy() > 0)))
    if missing:
        fail("missing users", missing, "prepared users with unseen candidates but no list")
    table = table.sort_values(["u", S.RANK])
    grouped = table.groupby("u", sort=True)
    size = grouped.size()
    position = grouped.cumcount() + 1
    bad_rank = table.loc[table[S.RANK].to_numpy() != position.to_numpy(), "u"].nunique()
    if bad_rank:
        fail("ranks", bad_rank, "ranks are not 1..N")
    short = int(np.count_nonzero(size.to_numpy() != expected.reindex(size.index).to_numpy()))
    if short:
        fail("list length", short, f"lists are not {n} long (or all the user's candidates)")
    keys = table["u"].to_numpy() * width + table["i"].to_numpy()
    at = np.minimum(np.searchsorted(seen, keys), max(len(seen) - 1, 0))
    seen_hit = (seen[at] == keys) if len(seen) else np.zeros(len(keys), bool)
    if seen_hit.any():
        fail("seen items", table.loc[seen_hit, "u"].nunique(), "items the user already rated")
    rising = grouped[S.SCORE].diff().to_numpy() > 1e-6
    if rising.any():
        fail("scores", table.loc[rising, "u"].nunique(), "scores increase with the rank")
    if len(table) != manifest.rows:  # after the checks above, which say more of a bad table
        raise IntegrityError(
            f"recommendations run {run_dir} holds {len(table):,} rows but its manifest records "
            f"{manifest.rows:,}; re-run `recsys score` for ds={manifest.ds}; it was not published"
        )
    empty = int(np.count_nonzero(~listed))
    if empty:
        log.info("%d user(s) rated every item and have an empty list", empty)
    return {"users": int(len(size)), "rows": int(len(table)), "empty_lists": empty}


def published_users(root: str) -> tuple[Path, int] | None:
    """The live table and how many users it covers, or None when nothing is published."""
    try:
        live = storage.latest(root, "recommendations")
    except RecsysError:
        return None
    users = pq.read_table(live / "table", columns=[S.USER_ID])[S.USER_ID]
    return live, len(users.unique())


def check_coverage(run_dir: Path, users: int, root: str, min_share: float) -> None:
    """Refuse a table that covers fewer users than ``min_share`` of the live one's (drift guard)."""
    live = published_users(root) if min_share > 0 else None
    if live is None or live[0] == run_dir or users >= min_share * live[1]:
        return
    raise RecsysError(
        f"{run_dir} covers {users:,} users, below publish.min_share={min_share:.0%} of the "
        f"{live[1]:,} of the published table {live[0]}; it was not published (if the drop is "
        "real, pass --min-share 0)"
    )


def publish(
    root: str,
    ds: str | None = None,
    run: str | None = None,
    min_share: float = 0.5,
    backwards: bool = False,
) -> dict[str, Any]:
    """Validate the scoring run (the given one, else the newest of ``ds``, else of today), check
    it covers at least ``min_share`` of the published table's users, and move
    ``recommendations/_LATEST`` to it, unless that names a newer ``ds`` (and not ``backwards``)."""
    ds = storage.check_ds(ds or storage.today_utc())
    storage.check_root(root, ("recommendations",))
    run_dir = storage.resolve(root, "recommendations", ds, run)
    counts = validate(run_dir)
    check_coverage(run_dir, counts["users"], root, min_share)
    manifest = RecommendationsManifest.read(run_dir)
    pointer = {"ds": manifest.ds, "run": manifest.run, "path": str(run_dir)}
    moved = storage.advance_latest(
        run_dir.parent.parent, manifest.ds, manifest.run, run_dir, backwards
    )
    log.info("published %s (%s)%s", run_dir, counts, "" if moved else ", _LATEST unchanged")
    return {**pointer, **counts, "moved": moved}
