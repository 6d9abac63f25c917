"""Write a synthetic data set: ``planted.npz``, ``movies.csv`` and a streamed ``ratings.csv``.

:func:`synthesize` draws the planted model, then generates blocks of users on a few threads
(two by default) while the calling thread formats finished blocks with the Arrow CSV writer, in
block order. At most ``workers + 1`` blocks are in flight, so memory stays well under 1 GiB even
for ml-25m, and the output is a pure function of the shape and the seed, not of the number of
worker threads.
"""

from __future__ import annotations

import collections
import csv
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
from threadpoolctl import threadpool_limits

from recsys.data.synth.planted import GENRES, NO_GENRES, Planted, plant, save_planted
from recsys.data.synth.sampling import BlockSampler
from recsys.data.synth.shapes import SHAPES, Shape
from recsys.errors import RecsysError

log = logging.getLogger(__name__)

__all__ = ["MOVIES_HEADER", "RATINGS_HEADER", "SynthResult", "synthesize"]

RATINGS_HEADER = "userId,movieId,rating,timestamp"
MOVIES_HEADER = "movieId,title,genres"


@dataclass(frozen=True)
class SynthResult:
    """What :func:`synthesize` wrote.

    Attributes:
        path: The folder holding ratings.csv, movies.csv and planted.npz.
        n_users: Users written.
        n_items: Movies in movies.csv.
        n_ratings: Rows in ratings.csv.
        seconds: Wall time of the whole run.
    """

    path: Path
    n_users: int
    n_items: int
    n_ratings: int
    seconds: float


def synthesize(
    dest: str | os.PathLike[str],
    shape: str | Shape = "ml-latest-small",
    *,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
) -> SynthResult:
    """Write a synthetic MovieLens-format data set and its planted model to ``dest``.

    Files are written under temporary names and renamed at the end, so an interrupted run never
    leaves a complete-looking but truncated ``ratings.csv``. ``ratings.csv`` rows are grouped by
    userId (1, 2, ...) and in increasing time within a user.

    Args:
        dest: Folder to write (created if missing; existing files of the same names are replaced).
        shape: A key of :data:`SHAPES` or a :class:`Shape`.
        seed: Everything written is a pure function of ``(shape, seed)``.
        progress: Called as ``progress(rows_written, n_ratings)`` after each block of users.
        workers: Threads generating blocks (default: up to 2, the CPU count); does not change
            the output.

    Returns:
        Paths and counts of what was written, with the wall time.

    Raises:
        RecsysError: Unknown shape name, negative seed or fewer than one worker.
    """
    started = time.perf_counter()
    if seed < 0:
        raise RecsysError(f"seed must be >= 0, got {seed}")
    if workers is not None and workers < 1:
        raise RecsysError(f"workers must be >= 1, got {workers}")
    if isinstance(shape, str):
        if shape not in SHAPES:
            raise RecsysError(f"unknown shape {shape!r}; use one of {', '.join(SHAPES)}")
        shape = SHAPES[shape]
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    n_workers = workers if workers is not None else max(1, min(2, os.cpu_count() or 1))
    log.info(
        "synthesising %s: %d users, %d items, %d ratings (seed %d) into %s",
        shape.name,
        shape.n_users,
        shape.n_items,
        shape.n_ratings,
        seed,
        out,
    )
    model = plant(shape, seed)
    # Write everything under temporary names first, then rename: a killed run never leaves a
    # truncated ratings.csv, nor a planted.npz that does not match the ratings next to it.
    parts = {name: out / f".{name}.part" for name in ("planted.npz", "movies.csv", "ratings.csv")}
    try:
        save_planted(parts["planted.npz"], model)
        _write_movies(parts["movies.csv"], model)
        # Single-threaded BLAS while blocks are generated: each block's matmul is small
        # (block x 35 x n_items), yet OpenBLAS splits it over every core and its idle threads then
        # spin for ~0.1 s after each call, which took about 30 % of the CPU from the generator's
        # own threads on 2 cores. The generator already runs one block per core, so BLAS threads
        # buy nothing. The limit is process-wide while it lasts and is restored on exit.
        with threadpool_limits(limits=1, user_api="blas"):
            sampler = BlockSampler(model)
            written = _write_ratings(parts["ratings.csv"], sampler, n_workers, progress)
        if written != shape.n_ratings:  # a bug, not a user error
            raise AssertionError(f"wrote {written} ratings, expected {shape.n_ratings}")
        for name, tmp in parts.items():
            os.replace(tmp, out / name)
    finally:
        for tmp in parts.values():
            tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    log.info("wrote %d ratings in %.1f s (%.0f rows/s)", written, seconds, written / seconds)
    return SynthResult(out, shape.n_users, shape.n_items, written, seconds)


def _write_movies(path: Path, m: Planted) -> None:
    """Write ``movies.csv`` with csv quoting (titles with commas or quotes get quoted)."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MOVIES_HEADER.split(","))
        for idx in range(m.shape.n_items):
            movie_id, year = int(m.item_ids[idx]), int(m.item_years[idx])
            style = m.item_title_style[idx]
            if style == 1:
                title = f"Synthetic Movie {movie_id}, The ({year})"
            elif style == 2:
                title = f'Synthetic "Movie" {movie_id} ({year})'
            else:
                title = f"Synthetic Movie {movie_id} ({year})"
            names = [g for g, on in zip(GENRES, m.item_genres[idx], strict=True) if on]
            writer.writerow([movie_id, title, "|".join(names) or NO_GENRES])


def _write_ratings(
    path: Path,
    sampler: BlockSampler,
    n_workers: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Stream every block's rows to ``ratings.csv`` in block order; return the row count.

    Blocks are generated by ``n_workers`` threads (NumPy releases the GIL in the heavy loops)
    while this thread formats and writes finished ones. At most ``n_workers + 1`` blocks are in
    flight, which bounds memory.
    """
    total = sampler.model.shape.n_ratings
    written = 0
    next_report = 0.1
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    pending: collections.deque[Future[pa.Table]] = collections.deque()
    with (
        pa.OSFile(str(path), "wb") as sink,
        ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="synth") as pool,
    ):
        sink.write(f"{RATINGS_HEADER}\n".encode())
        writer = None
        try:
            next_block = 0
            while next_block < sampler.n_blocks or pending:
                while next_block < sampler.n_blocks and len(pending) <= n_workers:
                    pending.append(pool.submit(sampler.sample, next_block))
                    next_block += 1
                table = pending.popleft().result()
                if writer is None:
                    writer = pa_csv.CSVWriter(sink, table.schema, write_options=options)
                writer.write_table(table)
                written += table.num_rows
                if progress is not None:
                    progress(written, total)
                if written >= next_report * total:
                    share = written / total
                    log.info("ratings: %d / %d rows (%.0f%%)", written, total, 100 * share)
                    next_report = (int(share * 10) + 1) / 10
        finally:
            for fut in pending:
                fut.cancel()
            if writer is not None:
                writer.close()
    return written
