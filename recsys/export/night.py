"""One published night as the serving stores load it: the lists, the fallback, similar items.

A night is the run ``recommendations/_LATEST`` names (or ``--ds``/``--run``). Beside each user's
list it carries the popularity list of the same night, the answer for users the table does not
hold, computed as the scoring job computes it for its cold users (training rows of the model's
prepared run, most counted first, ties by item index, items below ``min_item_ratings`` left out),
and the ``similar_items`` run of the same run id when the night wrote one. pyarrow and pandas only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from recsys import schema as S
from recsys import storage
from recsys.errors import RecsysError
from recsys.manifests import (
    ModelManifest,
    PreparedManifest,
    RecommendationsManifest,
    SimilarItemsManifest,
)

log = logging.getLogger(__name__)

LIST_COLUMNS = [S.USER_ID, S.RANK, S.ITEM_ID, S.SCORE, S.SOURCE, S.TITLE]
POPULAR_COLUMNS = [S.RANK, S.ITEM_ID, S.SCORE, S.TITLE]
SIMILAR_COLUMNS = [S.ITEM_ID, S.RANK, S.SIMILAR_ITEM_ID, S.SCORE, S.SIMILAR_TITLE]


@dataclass(frozen=True)
class Night:
    """What one export loads, and what the loaded generation is checked against."""

    folder: Path
    manifest: RecommendationsManifest
    lists: pd.DataFrame  # LIST_COLUMNS, sorted by user then rank
    popular: pd.DataFrame  # POPULAR_COLUMNS, rank order
    similar: pd.DataFrame | None  # SIMILAR_COLUMNS, or None when the night wrote none
    users: int  # users the published table must hold (every user of the prepared run)
    similar_rows: int = 0  # rows the similar_items manifest says it holds

    @property
    def ds(self) -> str:
        return self.manifest.ds

    @property
    def run(self) -> str:
        return self.manifest.run

    @property
    def model_version(self) -> str:
        return self.manifest.model_version


def read_night(root: str, ds: str | None = None, run: str | None = None) -> Night:
    """The published night (``_LATEST``, or the given ``ds``/``run``) ready to load."""
    storage.check_root(root, ("recommendations",), write=False)
    folder = storage.resolve(root, "recommendations", ds, run)
    manifest = RecommendationsManifest.read(folder)
    lists = (
        pads.dataset(folder / "table", format="parquet")
        .to_table(columns=LIST_COLUMNS)
        .to_pandas()
        .sort_values([S.USER_ID, S.RANK], kind="stable")
        .reset_index(drop=True)
    )
    prepared = manifest.prepared.folder
    users = PreparedManifest.read(prepared).n_users
    popular = popular_list(manifest, prepared)
    similar, similar_rows = _similar(root, manifest)
    log.info(
        "night %s/%s: %d rows for %d users, %d popular, %s similar rows",
        manifest.ds,
        manifest.run,
        len(lists),
        users,
        len(popular),
        "no" if similar is None else len(similar),
    )
    return Night(folder, manifest, lists, popular, similar, users, similar_rows)


def popular_list(manifest: RecommendationsManifest, prepared: Path) -> pd.DataFrame:
    """The night's popularity list: the top ``top_n`` training items by count (score = count)."""
    try:
        trained_on = ModelManifest.read(manifest.model.folder).trained_on
    except RecsysError:
        trained_on = ["train"]  # the model run went (retention); score's default
    ratings = pads.dataset(prepared / "ratings", format="parquet", partitioning="hive")
    items = pads.dataset(prepared / "items", format="parquet").to_table(
        columns=[S.ITEM_IDX, S.ITEM_ID, S.TITLE]
    )
    every = ratings.to_table(columns=[S.ITEM_IDX, S.SPLIT])
    every = every.set_column(1, S.SPLIT, every[S.SPLIT].cast("string"))
    rare = set()
    if manifest.min_item_ratings > 0:
        all_counts = _counts(every)
        rare = set(all_counts.loc[all_counts["n"] < manifest.min_item_ratings, S.ITEM_IDX])
    counts = _counts(every.filter(pc.is_in(every[S.SPLIT], value_set=pa.array(trained_on))))
    counts = counts[~counts[S.ITEM_IDX].isin(rare)]
    top = counts.sort_values(["n", S.ITEM_IDX], ascending=[False, True]).head(manifest.top_n)
    top = top.merge(items.to_pandas(), on=S.ITEM_IDX, how="left")
    top = top.sort_values(["n", S.ITEM_IDX], ascending=[False, True]).reset_index(drop=True)
    top[S.RANK] = range(1, len(top) + 1)
    top[S.SCORE] = top["n"].astype("float32")
    return top[POPULAR_COLUMNS]


def _counts(rows) -> pd.DataFrame:
    """Rows per item index as a frame (item_idx, n)."""
    counted = rows.group_by(S.ITEM_IDX).aggregate([(S.ITEM_IDX, "count")]).to_pandas()
    return counted.rename(columns={f"{S.ITEM_IDX}_count": "n"})


def _similar(root: str, manifest: RecommendationsManifest) -> tuple[pd.DataFrame | None, int]:
    """The similar_items run of the night's run id, with its manifest's row count."""
    folder = storage.RunPaths(root, "similar_items", manifest.ds, manifest.run).final
    if not (folder / storage.MANIFEST).is_file():
        return None, 0
    rows = SimilarItemsManifest.read(folder).rows
    frame = (
        pads.dataset(folder / "table", format="parquet")
        .to_table(columns=SIMILAR_COLUMNS)
        .to_pandas()
        .sort_values([S.ITEM_ID, S.RANK], kind="stable")
        .reset_index(drop=True)
    )
    return frame, rows
