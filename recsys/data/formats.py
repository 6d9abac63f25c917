"""The input formats recsys reads, and detection of which one a path holds.

MovieLens has shipped three layouts over the years:

* ``ml-100k``: ``u.data`` (tab: user, item, rating, unix time) and ``u.item`` (pipe, latin-1,
  19 genre flags);
* ``ml-1m`` / ``ml-10m``: ``ratings.dat`` and ``movies.dat`` separated by ``::`` (ml-1m rates 1-5,
  ml-10m 0.5-5 in half stars);
* ``ml-csv`` (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m): ``ratings.csv`` and
  ``movies.csv`` with headers, genres as ``A|B``, half stars.

Plus generic logs: ``csv`` or ``parquet`` with configurable column names, where the rating column is
optional (implicit events) and ids may be strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recsys.errors import RecsysError

ML100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


@dataclass(frozen=True)
class FormatSpec:
    """How to read one format's ratings file (as text lines) and its item file."""

    name: str
    ratings_file: str  # file name inside the folder ("" for generic logs)
    items_file: str  # "" when the format has none
    sep: str  # field separator of the ratings lines (literal, not a regex)
    header: str  # exact first line of the ratings file, "" when there is none
    rating_min: float
    rating_max: float
    numeric_ids: bool  # MovieLens ids are int64; generic logs decide from the data
    text: bool  # read as text lines (MovieLens) or with a CSV/Parquet reader (generic)


FORMATS: dict[str, FormatSpec] = {
    "ml-100k": FormatSpec("ml-100k", "u.data", "u.item", "\t", "", 1.0, 5.0, True, True),
    "ml-1m": FormatSpec("ml-1m", "ratings.dat", "movies.dat", "::", "", 1.0, 5.0, True, True),
    "ml-10m": FormatSpec("ml-10m", "ratings.dat", "movies.dat", "::", "", 0.5, 5.0, True, True),
    "ml-csv": FormatSpec(
        "ml-csv",
        "ratings.csv",
        "movies.csv",
        ",",
        "userId,movieId,rating,timestamp",
        0.5,
        5.0,
        True,
        True,
    ),
    "csv": FormatSpec("csv", "", "", ",", "", float("-inf"), float("inf"), False, False),
    "parquet": FormatSpec("parquet", "", "", "", "", float("-inf"), float("inf"), False, False),
}
# Release names people type, mapped to their layout.
ALIASES = {
    "ml-latest-small": "ml-csv",
    "ml-latest": "ml-csv",
    "ml-20m": "ml-csv",
    "ml-25m": "ml-csv",
    "ml-32m": "ml-csv",
    "movielens-csv": "ml-csv",
}


def get_format(name: str) -> FormatSpec:
    """Look a format up by name or release alias, or raise a clear error."""
    key = ALIASES.get(name, name)
    if key not in FORMATS:
        known = ", ".join(sorted([*FORMATS, *ALIASES]))
        raise RecsysError(f"--format {name!r} is not a known format; use one of: {known}")
    return FORMATS[key]


@dataclass(frozen=True)
class Located:
    """A resolved input: the format, the ratings file(s) and the item file (if any)."""

    spec: FormatSpec
    ratings: Path
    items: Path | None


def _items_next_to(folder: Path, spec: FormatSpec) -> Path | None:
    if not spec.items_file:
        return None
    candidate = folder / spec.items_file
    return candidate if candidate.is_file() else None


def locate(path: str | Path, fmt: str = "") -> Located:
    """Find the ratings and item files of ``path`` (a folder or a file), detecting the format.

    Raises ``RecsysError`` when the path does not exist, holds no known ratings file, or does not
    match the named format.
    """
    p = Path(path)
    if not str(path):
        raise RecsysError("no input given; pass --input PATH (a MovieLens folder or a log file)")
    if not p.exists():
        raise RecsysError(f"input {p} does not exist")
    if fmt:
        spec = get_format(fmt)
        if p.is_dir():
            if not spec.ratings_file:
                return Located(spec, p, None)  # a folder of CSV/Parquet part files
            ratings = p / spec.ratings_file
            if not ratings.is_file():
                raise RecsysError(f"{p} has no {spec.ratings_file}, which format {spec.name} needs")
            return Located(spec, ratings, _items_next_to(p, spec))
        return Located(spec, p, _items_next_to(p.parent, spec))
    if p.is_dir():
        for spec_name, marker in (("ml-100k", "u.data"), ("ml-csv", "ratings.csv")):
            if (p / marker).is_file():
                spec = FORMATS[spec_name]
                return Located(spec, p / marker, _items_next_to(p, spec))
        if (p / "ratings.dat").is_file():
            spec = FORMATS["ml-10m" if "10m" in p.name.lower() else "ml-1m"]
            return Located(spec, p / "ratings.dat", _items_next_to(p, spec))
        if any(p.glob("*.parquet")):
            return Located(FORMATS["parquet"], p, None)
        if any(p.glob("*.csv")):
            return Located(FORMATS["csv"], p, None)
        raise RecsysError(
            f"cannot tell the format of {p}: no u.data, ratings.dat, ratings.csv, *.csv or "
            "*.parquet inside; pass --format"
        )
    name = p.name.lower()
    if name == "u.data" or name.endswith((".base", ".test")):
        spec = FORMATS["ml-100k"]
    elif name == "ratings.dat":
        spec = FORMATS["ml-10m" if "10m" in p.parent.name.lower() else "ml-1m"]
    elif name.endswith(".parquet"):
        spec = FORMATS["parquet"]
    elif name.endswith(".csv"):
        first = read_first_line(p)
        spec = FORMATS["ml-csv" if first == FORMATS["ml-csv"].header else "csv"]
    else:
        raise RecsysError(f"cannot tell the format of {p} from its name; pass --format")
    return Located(spec, p, _items_next_to(p.parent, spec))


def read_first_line(path: Path) -> str:
    """First line of a text file without its line ending ('' for an empty file)."""
    with open(path, "rb") as f:
        return f.readline().decode("utf-8", errors="replace").rstrip("\r\n")


def check_header(located: Located) -> None:
    """Fail early when the ratings file is empty or its header does not match the format."""
    spec, path = located.spec, located.ratings
    if path.is_dir():
        return
    if path.stat().st_size == 0:
        raise RecsysError(f"input {path} is empty")
    if spec.header:
        first = read_first_line(path)
        if first.strip().lstrip("\ufeff") != spec.header:
            raise RecsysError(
                f"{path} starts with {first[:80]!r}, not the {spec.name} header "
                f"{spec.header!r}; pass the right --format"
            )
