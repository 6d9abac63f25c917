"""Item (movie) files: titles and genres, read in Python because they are small.

MovieLens item files mix encodings (ml-100k and ml-1m are latin-1, the CSV releases UTF-8) and a
damaged copy can mix them line by line, so each line is decoded on its own: UTF-8 first, latin-1
when that fails (every byte string is valid latin-1, so no title is lost); the count of re-decoded
lines is reported. Lines that cannot be parsed go to the quarantine with a reason, never dropped.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recsys import schema as S
from recsys.data.formats import ML100K_GENRES, FormatSpec

log = logging.getLogger(__name__)

REASON_ITEM_ROW = "bad_item_row"


@dataclass
class ItemsRead:
    """Parsed items (``item_id`` as text, title, genres list) and what could not be parsed."""

    items: pd.DataFrame
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (raw line, reason)
    redecoded: int = 0


def _decode(raw: bytes) -> tuple[str, bool]:
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("latin-1"), True


def _ml100k_genres(folder: Path) -> list[str]:
    """Genre names from ``u.genre`` when present, else the documented list."""
    path = folder / "u.genre"
    if not path.is_file():
        return list(ML100K_GENRES)
    names: dict[int, str] = {}
    for line in path.read_bytes().decode("latin-1").splitlines():
        if "|" in line:
            name, idx = line.rsplit("|", 1)
            if idx.strip().isdigit():
                names[int(idx)] = name
    return [names[i] for i in sorted(names)] or list(ML100K_GENRES)


def read_items(path: Path | None, spec: FormatSpec) -> ItemsRead:
    """Read the item file of a MovieLens format; an absent file gives an empty table."""
    out = ItemsRead(pd.DataFrame({S.ITEM_ID: [], S.TITLE: [], S.GENRES: []}))
    if path is None:
        return out
    genre_names = _ml100k_genres(path.parent) if spec.name == "ml-100k" else []
    rows: list[tuple[str, str, list[str]]] = []
    lines = path.read_bytes().splitlines()
    for number, raw in enumerate(lines):
        text, redecoded = _decode(raw)
        out.redecoded += redecoded
        if not text.strip():
            continue  # blank lines in the small item file carry nothing
        if spec.name == "ml-csv":
            if number == 0 and text.lstrip("\ufeff").startswith("movieId"):
                continue
            fields = next(csv.reader(io.StringIO(text)), [])
            if len(fields) != 3:
                out.rejected.append((text, REASON_ITEM_ROW))
                continue
            item, title, genres = fields
            genre_list = [] if genres == "(no genres listed)" else genres.split("|")
        elif spec.name == "ml-100k":
            fields = text.split("|")
            flags = fields[5:]
            if len(fields) < 6 or any(f not in ("0", "1") for f in flags):
                out.rejected.append((text, REASON_ITEM_ROW))
                continue
            item, title = fields[0], fields[1]
            genre_list = [
                genre_names[i] if i < len(genre_names) else f"genre{i}"
                for i, f in enumerate(flags)
                if f == "1"
            ]
        else:  # ml-1m / ml-10m
            fields = text.split("::")
            if len(fields) != 3:
                out.rejected.append((text, REASON_ITEM_ROW))
                continue
            item, title, genres = fields
            genre_list = [g for g in genres.split("|") if g and g != "(no genres listed)"]
        item = item.strip()
        if not item.lstrip("-").isdigit():
            out.rejected.append((text, REASON_ITEM_ROW))
            continue
        rows.append((item, title, genre_list))
    if out.redecoded:
        log.warning("%s: %d lines were not UTF-8 and were read as latin-1", path, out.redecoded)
    frame = pd.DataFrame(rows, columns=[S.ITEM_ID, S.TITLE, S.GENRES])
    # A repeated item id keeps its first row; later ones are rejected, not silently merged.
    dup = frame.duplicated(S.ITEM_ID, keep="first")
    for item, title in frame.loc[dup, [S.ITEM_ID, S.TITLE]].itertuples(index=False):
        out.rejected.append((f"{item}{spec.sep}{title}", "duplicate_item_id"))
    out.items = frame.loc[~dup].reset_index(drop=True)
    return out
