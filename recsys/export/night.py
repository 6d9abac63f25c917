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
from functools import cached_property
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
    """What one export loads, and what the loaded generation is checked against. The tables
    are read on first use: an export that finds the night loaded already never reads them."""

    root: str
    folder: Path
    manifest: RecommendationsManifest
    users: int  # users the published table must hold (every user of the prepared run)

    @property
    def ds(self) -> str:
        return self.manifest.ds

    @property
    def run(self) -> str:
        return self.manifest.run

    @property
    def model_version(self) -> str:
        return self.manifest.model_version

    @cached_property
    def lists(self) -> pd.DataFrame:
        """LIST_COLUMNS, sorted by user then rank."""
        lists = (
            pads.dataset(self.folder / "table", format="parquet")
            .to_table(columns=LIST_COLUMNS)
            .to_pandas()
            .sort_values([S.USER_ID, S.RANK], kind="stable")
            .reset_index(drop=True)
        )
        log.info("night %s/%s: %d rows read", self.ds, self.run, len(lists))
        return lists

    @cached_property
    def popular(self) -> pd.DataFrame:
        """POPULAR_COLUMNS, rank order: the fallback list."""
        return popular_list(self.manifest, self.manifest.prepared.folder)

    @cached_property
    def _similar_pair(self) -> tuple[pd.DataFrame | None, int]:
        return _similar(self.root, self.manifest)

    @property
    def similar(self) -> pd.DataFrame | None:
        """SIMILAR_COLUMNS, or None when the night wrote no similar_items."""
        return self._similar_pair[0]

    @property
    def similar_rows(self) -> int:
        """Rows the similar_items manifest says it holds (0: none)."""
        return self._similar_pair[1]


def read_night(root: str, ds: str | None = None, run: str | None = None) -> Night:
    """The published night (``_LATEST``, or the given ``ds``/``run``), its tables unread."""
    storage.check_root(root, ("recommendations",), write=False)
    folder = storage.resolve(root, "recommendations", ds, run)
    manifest = RecommendationsManifest.read(folder)
    users = PreparedManifest.read(manifest.prepared.folder).n_users
    return Night(root, folder, manifest, users)


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
