"""The scoring step: every user's top-N unseen items, as a Spark job (``recsys score``).

One row per user with the user's seen items goes through ``mapInPandas`` to ``top_n_block``
(numpy, the model's arrays loaded once per Python worker); (user, item) pairs are never rows.
Users the model has no training rows for get the popularity list (``source = popular``). With
``similar_items=N`` the same job writes each item's N nearest items to ``similar_items/`` under
the same run id. Both tables are staged, then committed recommendations first; only ``recsys
publish`` moves ``recommendations/_LATEST``, while ``similar_items/_LATEST`` moves on commit (it
holds no user's list; read the run of the published recommendations' run id to match them).
Columns: ``schema.RECOMMENDATIONS_COLUMNS`` and ``schema.SIMILAR_ITEMS_COLUMNS``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys import integrity, storage
from recsys import schema as S
from recsys.config import Config
from recsys.errors import RecsysError
from recsys.manifests import (
    ModelManifest,
    PreparedManifest,
    RecommendationsManifest,
    RunRef,
    SimilarItemsManifest,
)

log = logging.getLogger(__name__)

SEEN = "seen"  # a user's seen item indices (every split), between the Spark stages
HAS_TRAIN = "has_train"  # whether any of them is a row the model was trained on
SIMILAR_IDX = "similar_idx"
_WORKER: dict[str, Any] = {}  # per Python worker: the loaded artifact and the BLAS limit


@dataclass(frozen=True)
class ScoreResult:
    path: Path
    manifest: RecommendationsManifest
    similar: SimilarResult | None = None  # the similar_items run, when asked for


@dataclass(frozen=True)
class SimilarResult:
    path: Path
    manifest: SimilarItemsManifest


def _scorer(path: str):
    """The artifact's scorer, loaded once per Python worker. BLAS is pinned to one thread on
    first use: Spark already runs one task per core, and tasks x BLAS threads > cores
    (oversubscription) is the first thing that slows a scoring job down."""
    from recsys.artifact import Scorer

    if _WORKER.get("path") != path:
        if "blas" not in _WORKER:
            from threadpoolctl import threadpool_limits

            _WORKER["blas"] = threadpool_limits(limits=1, user_api="blas")
        _WORKER.update(path=path, scorer=Scorer.load(path))
    return _WORKER["scorer"]


def load_artifact(model_dir: Path, prepared_manifest: PreparedManifest):
    """The model's numpy arrays, checked against the prepared run, or one clear sentence."""
    from recsys.artifact import Scorer

    path = model_dir / "arrays.npz"
    if not path.is_file():
        raise RecsysError(f"{path} is missing; re-run `recsys train` for this model run")
    try:
        scorer = Scorer.load(path)
        n_items = scorer.n_items
    except Exception as err:  # a truncated or foreign file: zip, pickle or key errors
        raise RecsysError(f"{path} is not a readable model artifact ({err}); re-train") from None
    if n_items != prepared_manifest.n_items:
        raise RecsysError(
            f"the model in {model_dir} scores {n_items} items but the prepared run has "
            f"{prepared_manifest.n_items}; score with the prepared run it was trained on"
        )
    return scorer


def score_partitions(artifact: str, n: int, excluded: list[int]):
    """``mapInPandas`` function: (user_idx, seen) batches -> (user_idx, rank, item_idx, score)."""
    import pandas as pd

    from recsys.score.topn import top_n_block

    def run(batches):
        for batch in batches:
            scorer = _scorer(artifact)
            mask = None
            if excluded:
                mask = np.zeros(scorer.n_items, dtype=bool)
                mask[excluded] = True
            users = batch[S.USER_IDX].to_numpy()
            seen = [np.asarray(s, np.int64) for s in batch[SEEN]]
            items, scores = top_n_block(scorer, users, seen, n, mask)  # (b, n)
            keep = items >= 0
            rows = np.nonzero(keep)[0]
            yield pd.DataFrame(
                {
                    S.USER_IDX: users[rows].astype(np.int32),
                    S.RANK: (np.cumsum(keep, axis=1)[keep]).astype(np.int32),
                    S.ITEM_IDX: items[keep].astype(np.int32),
                    S.SCORE: scores[keep].astype(np.float32),
                }
            )

    return run


def similar_partitions(artifact: str, n: int, excluded: list[int]):
    """``mapInPandas`` function: (item_idx) batches -> (item_idx, rank, similar_idx, score)."""
    import pandas as pd

    from recsys.score.similar import similar_block, unit_vectors

    def run(batches):
        mask = None
        for batch in batches:
            scorer = _scorer(artifact)
            unit = unit_vectors(scorer)  # built once per worker, cached on the scorer
            if mask is None:
                mask = np.zeros(scorer.n_items, dtype=bool)
                mask[excluded] = True
            items = batch[S.ITEM_IDX].to_numpy()
            items = items[~mask[items]]  # excluded items get no list
            neighbours, scores = similar_block(unit, items, n, mask)  # (b, n)
            keep = neighbours >= 0
            rows = np.nonzero(keep)[0]
            yield pd.DataFrame(
                {
                    S.ITEM_IDX: items[rows].astype(np.int32),
                    S.RANK: (np.cumsum(keep, axis=1)[keep]).astype(np.int32),
                    SIMILAR_IDX: neighbours[keep].astype(np.int32),
                    S.SCORE: scores[keep].astype(np.float32),
                }
            )

    return run


def _write_similar(spark, cfg, items, n_items, model_version, artifact, n, excluded, paths) -> int:
    """Stage the similar_items table under ``paths.staging``; returns its row count."""
    from pyspark.sql import functions as F

    blocks = spark.range(0, n_items, numPartitions=max(1, cfg.spark.shuffle_partitions))
    pairs = blocks.select(F.col("id").cast("int").alias(S.ITEM_IDX)).mapInPandas(
        similar_partitions(artifact, n, excluded),
        f"{S.ITEM_IDX} int, {S.RANK} int, {SIMILAR_IDX} int, {S.SCORE} float",
    )
    names = items.select(S.ITEM_IDX, S.ITEM_ID, S.TITLE)
    other = names.select(
        F.col(S.ITEM_IDX).alias(SIMILAR_IDX),
        F.col(S.ITEM_ID).alias(S.SIMILAR_ITEM_ID),
        F.col(S.TITLE).alias(S.SIMILAR_TITLE),
    )
    table = (
        pairs.join(F.broadcast(names), S.ITEM_IDX)
        .join(F.broadcast(other), SIMILAR_IDX)
        .withColumn(S.MODEL_VERSION, F.lit(model_version))
        .select(*S.SIMILAR_ITEMS_COLUMNS)
    )
    table.write.parquet(str(paths.staging / "table"))
    return spark.read.parquet(str(paths.staging / "table")).count()


def check_options(n: int, similar_items: int, extra: int = 0) -> None:
    if n < 1:
        raise RecsysError(f"--top must be at least 1, got {n}")
    if extra < 0:
        raise RecsysError(f"--extra must be 0 or more, got {extra}")
    if similar_items < 0:
        raise RecsysError(f"--similar-items must be 0 (off) or more, got {similar_items}")


def resolve_model(root: str, ds: str | None, run: str | None):
    """The model run to score, its manifest and its prepared run's, and the artifact's family
    (read and checked in the driver, so a bad artifact fails here in one sentence)."""
    model_dir = storage.resolve(root, "models", ds, run)
    model = ModelManifest.read(model_dir)
    prepared = PreparedManifest.read(model.prepared.folder)
    integrity.check_model(model_dir, model, ("arrays.npz",))
    integrity.check_prepared(model.prepared.folder, prepared)
    family = load_artifact(model_dir, prepared).family
    return model_dir, model, prepared, family


def rare_items(ratings, min_item_ratings: int) -> list[int]:
    """Items with fewer than ``min_item_ratings`` rows (every split): nobody gets them."""
    from pyspark.sql import functions as F

    if min_item_ratings <= 0:
        return []
    counts = ratings.groupBy(S.ITEM_IDX).count()
    rare = counts.where(F.col("count") < min_item_ratings).select(S.ITEM_IDX)
    return sorted(r[0] for r in rare.collect())


def seen_lists(ratings, trained_on: list[str]):
    """One row per user: the items seen in any split, and whether a row is one the model was
    trained on (the model knows the user). One shuffle, cached for both paths; for prepared
    runs without ``seen/`` (see ``read_seen``)."""
    from pyspark.sql import functions as F

    return (
        ratings.groupBy(S.USER_IDX)
        .agg(
            F.collect_list(S.ITEM_IDX).alias(SEEN),
            F.max(F.col(S.SPLIT).isin(*trained_on).cast("int")).alias(HAS_TRAIN),
        )
        .persist()
    )


def read_seen(spark, prepared_dir: Path, trained_on: list[str]):
    """``seen_lists`` read from the lists prepare grouped (``prepared/.../seen/``): no shuffle.
    Each file is one task (files are not packed together), so both cores score."""
    from pyspark.sql import functions as F

    from recsys.prepare.seen import FOLDER, count_column

    spark.conf.set("spark.sql.files.openCostInBytes", str(1 << 30))
    trained = sum((F.col(count_column(s)) for s in trained_on), F.lit(0))
    return spark.read.parquet(str(prepared_dir / FOLDER)).select(
        S.USER_IDX,
        F.col(S.ITEM_IDX).alias(SEEN),
        (trained > 0).cast("int").alias(HAS_TRAIN),
    )


def top_n_table(seen, ratings, users, items, artifact: str, model: ModelManifest, n, excluded):
    """The recommendations table: the model's top N for users it knows, the popular items for
    the others, with original ids and titles (``schema.RECOMMENDATIONS_COLUMNS``)."""
    from pyspark.sql import functions as F

    modelled = seen.where(F.col(HAS_TRAIN) == 1).select(S.USER_IDX, SEEN)
    schema = f"{S.USER_IDX} int, {S.RANK} int, {S.ITEM_IDX} int, {S.SCORE} float"
    scored = modelled.mapInPandas(score_partitions(artifact, n, excluded), schema).withColumn(
        S.SOURCE, F.lit(S.SOURCE_MODEL)
    )
    cold = seen.where(F.col(HAS_TRAIN) == 0).select(S.USER_IDX, SEEN)
    if cold.limit(1).count():
        # Users with no training rows: the most popular training items they have not seen.
        scored = scored.unionByName(_popular(ratings, cold, n, excluded, model.trained_on))
    return (
        scored.join(F.broadcast(users.select(S.USER_IDX, S.USER_ID)), S.USER_IDX)
        .join(F.broadcast(items.select(S.ITEM_IDX, S.ITEM_ID, S.TITLE)), S.ITEM_IDX)
        .withColumn(S.MODEL_VERSION, F.lit(model.model_version))
        .select(*S.RECOMMENDATIONS_COLUMNS)
    )


def write_table(spark, table, folder: Path, partitions: int) -> tuple[dict[str, int], int]:
    """Write the table (at most ``partitions`` files, no shuffle: it is already cut by user);
    returns its rows per source and its users (a list is of one source), read back in one pass."""
    from pyspark.sql import functions as F

    table.coalesce(max(1, partitions)).write.parquet(str(folder))
    written = spark.read.parquet(str(folder))
    rows = written.groupBy(S.SOURCE).agg(F.count("*"), F.countDistinct(S.USER_ID)).collect()
    return {r[0]: r[1] for r in rows}, sum(r[2] for r in rows)


def stage_similar(spark, cfg, items, model_dir, model, prepared, family, n, excluded, ds, run,
                  min_item_ratings):  # fmt: skip
    """Stage the similar_items run of the same id (committed after the recommendations)."""
    from recsys.families import family as family_of

    started = time.time()
    paths = storage.new_run(cfg.root, "similar_items", ds, run)
    rows = _write_similar(
        spark, cfg, items, prepared.n_items, model.model_version, str(model_dir / "arrays.npz"),
        n, excluded, paths,
    )  # fmt: skip
    manifest = SimilarItemsManifest(
        ds=ds,
        run=paths.run,
        top_n=n,
        similarity="cosine",
        vectors=family_of(family).vectors,
        model=RunRef.of(model, model_dir),
        model_version=model.model_version,
        prepared=model.prepared,
        rows=rows,
        excluded_items=len(excluded),
        min_item_ratings=min_item_ratings,
        seconds=round(time.time() - started, 1),
    )
    return paths, manifest


def run_score(
    cfg: Config,
    ds: str | None = None,
    run: str | None = None,
    model_ds: str | None = None,
    model_run: str | None = None,
    n: int = 10,
    min_item_ratings: int = 0,
    users_per_batch: int = 1024,
    similar_items: int = 0,
    extra: int = 0,
) -> ScoreResult:
    """Score every user of the model's prepared run; commit ``recommendations/ds=/run=``.

    ``similar_items > 0`` also commits ``similar_items/ds=/run=`` (same run id): each item's
    ``similar_items`` nearest items; its ``_LATEST`` moves on commit (see the module doc).
    ``extra`` more items a user are kept (lists of ``n + extra``; the manifest's ``top_n``)
    for filters applied when the table is read.
    """
    from recsys.spark import get_spark

    started = time.time()
    check_options(n, similar_items, extra)
    n += extra
    ds = storage.check_ds(ds or storage.today_utc())
    storage.check_root(cfg.root, ("models", "recommendations", "similar_items"))
    model_dir, model, prepared, family = resolve_model(cfg.root, model_ds, model_run)
    spark = get_spark(cfg.spark, "recsys-score")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(users_per_batch))
    ratings, items, users = (
        spark.read.parquet(str(model.prepared.folder / t)) for t in ("ratings", "items", "users")
    )
    excluded = rare_items(ratings, min_item_ratings)
    if prepared.has_seen:
        seen = read_seen(spark, model.prepared.folder, model.trained_on)
    else:
        seen = seen_lists(ratings, model.trained_on)
    artifact = str(model_dir / "arrays.npz")
    table = top_n_table(seen, ratings, users, items, artifact, model, n, excluded)
    paths = storage.new_run(cfg.root, "recommendations", ds, run)
    by_source, listed = write_table(
        spark, table, paths.staging / "table", cfg.spark.shuffle_partitions
    )
    manifest = RecommendationsManifest(
        ds=ds,
        run=paths.run,
        top_n=n,
        serve_extra=extra,
        model=RunRef.of(model, model_dir),
        model_version=model.model_version,
        prepared=model.prepared,
        rows=int(sum(by_source.values())),
        rows_by_source=by_source,
        excluded_items=len(excluded),
        min_item_ratings=min_item_ratings,
        seconds=round(time.time() - started, 1),
        synthetic=prepared.synthetic,
        empty_lists=prepared.n_users - listed,  # users with no unseen candidate
    )
    seen.unpersist()
    similar = None
    if similar_items:  # staged before either table is committed
        similar = stage_similar(
            spark, cfg, items, model_dir, model, prepared, family, similar_items, excluded, ds,
            paths.run, min_item_ratings,
        )  # fmt: skip
    final = storage.commit(paths, manifest, move_table_latest=False)
    log.info("scored %s -> %s", model.model_version, final)
    if similar is None:
        return ScoreResult(final, manifest)
    sim_final = storage.commit(similar[0], similar[1], backwards=cfg.move_latest_backwards)
    log.info("similar items of %s -> %s", model.model_version, sim_final)
    return ScoreResult(final, manifest, SimilarResult(sim_final, similar[1]))


def _popular(ratings, cold, n, excluded, trained_on=("train",)):
    """Top-N training items by count for users without training rows, minus what they saw."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = ratings.where(F.col(S.SPLIT).isin(*trained_on)).groupBy(S.ITEM_IDX).count()
    if excluded:
        counts = counts.where(~F.col(S.ITEM_IDX).isin(excluded))
    # A cold user saw at most their held-out rows, so the top (n + seen) items always suffice.
    limit = n + int(cold.select(F.max(F.size(SEEN))).first()[0] or 0)
    top = counts.orderBy(F.col("count").desc(), S.ITEM_IDX).limit(limit)
    pairs = cold.crossJoin(F.broadcast(top)).where(~F.array_contains(SEEN, F.col(S.ITEM_IDX)))
    order = Window.partitionBy(S.USER_IDX).orderBy(F.col("count").desc(), S.ITEM_IDX)
    return (
        pairs.withColumn(S.RANK, F.row_number().over(order))
        .where(F.col(S.RANK) <= n)
        .select(
            F.col(S.USER_IDX).cast("int"),
            F.col(S.RANK).cast("int"),
            F.col(S.ITEM_IDX).cast("int"),
            F.col("count").cast("float").alias(S.SCORE),
            F.lit(S.SOURCE_POPULAR).alias(S.SOURCE),
        )
    )
