"""The Parquet side of the training input: a split's files cut into row ranges (``Piece``),
shuffled and sharded over input pipelines, and read whole or streamed several side by side.

``recsys.train.data`` turns what this reads into shuffled batches; nothing here imports
TensorFlow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.train.runs import Columns

# Columns the model reads, in the order they travel through the generator.
COLUMNS = (S.USER_IDX, S.ITEM_IDX, S.RATING)

# Row groups read side by side to fill one shuffle chunk: more mixes more of the split into each
# chunk, at the cost of one open file and one decode buffer each.
STREAMS = 8


@dataclass(frozen=True)
class Piece:
    """A row range of one row group: the unit that is shuffled, sharded and read."""

    path: str
    row_group: int
    start: int
    stop: int

    @property
    def num_rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Split:
    """A split folder's Parquet files, opened through one filesystem."""

    name: str  # as the caller gave it, for messages
    fs: pafs.FileSystem
    files: tuple[str, ...]


def open_split(split_dir: str | os.PathLike | Sequence[str | os.PathLike]) -> Split:
    """List the Parquet files of a split folder (local path or a URI pyarrow understands).

    A sequence of folders (a refit reads every split) reads as one split, files in order.
    """
    if not isinstance(split_dir, (str, os.PathLike)):
        parts = [open_split(one) for one in split_dir]
        if not parts:
            raise RecsysError("no split folder given")
        return Split(
            " + ".join(p.name for p in parts),
            parts[0].fs,
            tuple(f for p in parts for f in p.files),
        )
    name = os.fspath(split_dir)
    try:
        if "://" in name:
            fs, root = pafs.FileSystem.from_uri(name)
        else:
            fs, root = pafs.LocalFileSystem(), str(Path(name).absolute())
        info = fs.get_file_info(root)
        if info.type != pafs.FileType.Directory:
            raise RecsysError(
                f"split folder {name} does not exist; run `recsys prepare` first or check --root"
            )
        entries = fs.get_file_info(pafs.FileSelector(root))
    except (OSError, pa.ArrowException) as err:
        raise RecsysError(f"cannot list split folder {name}: {err}") from None
    files = sorted(
        e.path
        for e in entries
        if e.type == pafs.FileType.File
        and e.base_name.endswith(".parquet")
        and not e.base_name.startswith(("_", "."))  # staging files and Spark markers
    )
    if not files:
        raise RecsysError(
            f"split folder {name} has no Parquet files; re-run `recsys prepare` to rebuild it"
        )
    return Split(name, fs, tuple(files))


def parquet(split: Split, path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(split.fs.open_input_file(path))
    except (OSError, pa.ArrowException) as err:
        raise RecsysError(
            f"{path} is not a readable Parquet file ({err}); re-run `recsys prepare`"
        ) from None


def plan(split: Split, columns: Sequence[str], strict_types: bool) -> list[Piece]:
    """Every row group of the split as a piece, in file order, after checking the columns."""
    pieces = []
    for path in split.files:
        pf = parquet(split, path)
        schema = pf.schema_arrow
        for column in columns:
            if column not in schema.names:
                raise RecsysError(
                    f"{path} has no column {column!r}; point at a split written by `recsys prepare`"
                )
            expected = S.RATINGS_ARROW.field(column).type if strict_types else None
            if expected is not None and schema.field(column).type != expected:
                raise RecsysError(
                    f"{path} has column {column!r} of type {schema.field(column).type}, expected "
                    f"{expected}; re-run `recsys prepare` to rewrite it"
                )
        meta = pf.metadata
        for rg in range(meta.num_row_groups):
            n = meta.row_group(rg).num_rows
            if n:
                pieces.append(Piece(path, rg, 0, n))
    return pieces


def shard(pieces: list[Piece], pipeline_id: int, num_pipelines: int) -> list[Piece]:
    """The pieces covering rows ``[id * n / k, (id + 1) * n / k)`` of the split, in order.

    Contiguous row ranges, not whole row groups, so that pipelines get the same number of rows
    (within one) however few or uneven the row groups are; only a row group a boundary cuts is
    decoded by two pipelines.
    """
    if num_pipelines == 1:
        return pieces
    total = sum(p.num_rows for p in pieces)
    lo, hi = total * pipeline_id // num_pipelines, total * (pipeline_id + 1) // num_pipelines
    shard, offset = [], 0
    for p in pieces:
        start, stop = max(lo - offset, 0), min(hi - offset, p.num_rows)
        if start < stop:
            shard.append(Piece(p.path, p.row_group, p.start + start, p.start + stop))
        offset += p.num_rows
    return shard


def read_pieces(split: Split, pieces: list[Piece], columns: Sequence[str]) -> list[np.ndarray]:
    """The given columns of the pieces, concatenated into preallocated numpy arrays."""
    schema = parquet(split, split.files[0]).schema_arrow
    total = sum(p.num_rows for p in pieces)
    out = [np.empty(total, schema.field(c).type.to_pandas_dtype()) for c in columns]
    pos = 0
    for path in dict.fromkeys(p.path for p in pieces):  # file order, each file opened once
        pf = parquet(split, path)
        for p in (p for p in pieces if p.path == path):
            table = pf.read_row_group(p.row_group, columns=list(columns))
            table = table.slice(p.start, p.num_rows)
            for array, column in zip(out, columns, strict=True):
                array[pos : pos + p.num_rows] = table.column(column).to_numpy()
            pos += p.num_rows
    return out


def stream_piece(split: Split, piece: Piece, rows: int) -> Iterator[Columns]:
    """The model columns of one piece, ``rows`` at a time, decoded incrementally."""
    pf = parquet(split, piece.path)
    seen = 0
    batches = pf.iter_batches(batch_size=rows, row_groups=[piece.row_group], columns=list(COLUMNS))
    for batch in batches:
        lo, hi = max(piece.start - seen, 0), min(piece.stop - seen, batch.num_rows)
        seen += batch.num_rows
        if lo < hi:
            yield [batch.column(i).to_numpy()[lo:hi] for i in range(len(COLUMNS))]
        if seen >= piece.stop:
            return


def stream_chunks(
    split: Split, pieces: list[Piece], chunk_rows: int, rng: np.random.Generator | None
) -> Iterator[Columns]:
    """Chunks of about ``chunk_rows`` rows: one slice from each of several open pieces.

    Shuffled (``rng`` given), the pieces are taken in a random order and ``STREAMS`` of them are
    read side by side, each contributing ``chunk_rows / STREAMS`` rows to every chunk, so a chunk
    mixes distant parts of the split before it is permuted. Unshuffled, one piece at a time in
    file order.
    """
    order = [pieces[i] for i in rng.permutation(len(pieces))] if rng is not None else pieces
    width = max(min(STREAMS if rng is not None else 1, len(order)), 1)
    part_rows = max(chunk_rows // width, 1)
    queue = iter(order)

    def open_next() -> Iterator[Columns] | None:
        piece = next(queue, None)
        return None if piece is None else stream_piece(split, piece, part_rows)

    streams = [s for s in (open_next() for _ in range(width)) if s is not None]
    while streams:
        parts = []
        for slot, stream in enumerate(streams):
            while stream is not None:
                part = next(stream, None)
                if part is not None:
                    parts.append(part)
                    break
                stream = streams[slot] = open_next()
        streams = [s for s in streams if s is not None]
        if parts:
            yield [np.concatenate(column) for column in zip(*parts, strict=True)]
