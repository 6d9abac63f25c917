"""Reading the current generation from PostgreSQL: one statement per call, autocommit.

Each call is one statement over the views :mod:`recsys.export.postgres` re-points, so it runs on
one snapshot and sees one generation; autocommit keeps no transaction (and no lock) open
between calls, so a switch never waits for an idle reader. The user's rows and the fallback list
come from the same statement over the same view (the fallback rows have no user_id).
"""

from __future__ import annotations

import threading
from typing import Any

from recsys.errors import RecsysError
from recsys.export.postgres import GENERATIONS, VIEWS, connect
from recsys.export.stores import shown
from recsys.serving import Recommendation

RECOMMEND = f"""WITH u AS (
    SELECT gen, rank, item_id, score, source, title, model_version FROM {VIEWS[0]}
    WHERE user_id = %(u)s)
SELECT * FROM (
    SELECT * FROM u
    UNION ALL
    SELECT gen, rank, item_id, score, source, title, model_version FROM {VIEWS[0]}
    WHERE user_id IS NULL AND NOT EXISTS (SELECT 1 FROM u)) AS l
ORDER BY rank LIMIT %(n)s"""
SIMILAR = f"""SELECT gen, rank, similar_item_id, score, 'similar', similar_title, NULL
FROM {VIEWS[1]} WHERE item_id = %(i)s ORDER BY rank LIMIT %(n)s"""


class PostgresStore:
    """Reads of one PostgreSQL database, one autocommit connection per thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._gens: dict[int, dict[str, Any]] = {}
        self._conn()  # a bad URL or a server down shows here, in one sentence

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = connect(self.url, autocommit=True)
        return conn

    def _query(self, sql: str, params: dict[str, Any]) -> list[tuple]:
        import psycopg

        try:
            return self._conn().execute(sql, params).fetchall()
        except psycopg.errors.UndefinedTable:
            raise RecsysError(
                f"{shown(self.url)} holds no exported generation; run `recsys export --to` first"
            ) from None
        except psycopg.OperationalError as exc:
            self._local.conn = None  # reconnect on the next call
            raise RecsysError(f"PostgreSQL at {shown(self.url)} failed a read ({exc})") from None

    def _generation(self, gen: int) -> dict[str, Any]:
        """ds, model_version and id type of a generation (they never change: cached)."""
        if gen not in self._gens:
            rows = self._query(
                f"SELECT ds, model_version, item_id_type FROM {GENERATIONS} WHERE gen = %(g)s",
                {"g": gen},
            )
            ds, version, typ = rows[0] if rows else ("", "", "string")
            self._gens[gen] = {"ds": ds, "model_version": version, "int": typ == "int64"}
        return self._gens[gen]

    def _rows(self, rows: list[tuple]) -> list[Recommendation]:
        out = []
        for gen, rank, item, score, source, title, version in rows:
            meta = self._generation(gen)
            item_id = int(item) if meta["int"] else item
            version = version or meta["model_version"]  # rows of lists carry their own
            out.append(Recommendation(rank, item_id, float(score), source, version, title,
                                      meta["ds"], gen))  # fmt: skip
        return out

    def recommend(self, user_id: Any, n: int = 10) -> list[Recommendation]:
        """The user's list from the current generation, or its popular list (source popular)."""
        return self._rows(self._query(RECOMMEND, {"u": str(user_id), "n": int(n)}))

    def similar(self, item_id: Any, n: int = 10) -> list[Recommendation]:
        """The item's nearest items from the current generation (empty when it has none)."""
        return self._rows(self._query(SIMILAR, {"i": str(item_id), "n": int(n)}))

    def health(self) -> dict[str, Any]:
        """The current generation: number, ds, run, model_version, rows, users, loaded_at."""
        rows = self._query(
            f"SELECT gen, ds, run, model_version, rows, users, loaded_at FROM {GENERATIONS} "
            "WHERE current",
            {},
        )
        if not rows:
            raise RecsysError(
                f"{shown(self.url)} holds no exported generation; run `recsys export --to` first"
            )
        gen, ds, run, version, n_rows, users, loaded = rows[0]
        return {"generation": gen, "ds": ds, "run": run, "model_version": version,
                "rows": n_rows, "users": users, "loaded_at": loaded.isoformat()}  # fmt: skip

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
