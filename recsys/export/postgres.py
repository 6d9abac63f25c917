"""Export a night to PostgreSQL as a generation, switched in one transaction (psycopg 3).

A generation is two tables, ``recsys_lists_g<N>`` (every user's list, and the night's popular
list as the rows whose ``user_id`` is NULL) and ``recsys_similar_g<N>``, created, filled with
COPY, indexed and counted inside ONE transaction, so a killed load leaves nothing (the server
rolls it back) and a count that differs from the published manifests rolls it back too. Readers
query the views ``recsys_recommendations`` and ``recsys_similar_items``; the switch re-points both
and marks the current row of ``recsys_generations`` in one more transaction. A reader's
statement names one view only (the fallback is in the same view), so its lock never waits in a
cycle with the switch's. Exports hold a session advisory lock, so two never interleave. Ids are
stored as text (every id type fits); the generation row records the type to give them back as.
Everything recsys creates carries the comment :data:`OWNER`; a name taken by anything without it
is refused, never replaced or dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.export.night import Night, read_night
from recsys.export.stores import OWNER, shown

log = logging.getLogger(__name__)

GENERATIONS = "recsys_generations"
VIEWS = ("recsys_recommendations", "recsys_similar_items")
PARTS = ("lists", "similar")  # the table of a generation behind each view
LOCK_KEY = 0x7265637379730001  # pg_advisory_lock key of exports ("recsys" + 1)
COLUMNS = {
    "lists": "gen int, user_id text, rank int, item_id text, score real, source text, "
    "model_version text, title text",
    "similar": "gen int, item_id text, rank int, similar_item_id text, score real, "
    "similar_title text",
}
INDEXES = {"lists": "(user_id, rank)", "similar": "(item_id, rank)"}
GENERATIONS_DDL = f"""CREATE TABLE {GENERATIONS} (
    gen int PRIMARY KEY, ds text NOT NULL, run text NOT NULL, model_version text NOT NULL,
    rows bigint NOT NULL, users bigint NOT NULL, popular int NOT NULL, similar_rows bigint NOT NULL,
    item_id_type text NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(),
    current boolean NOT NULL DEFAULT false)"""


def table(part: str, gen: int) -> str:
    """The table of one part of generation ``gen``."""
    return f"recsys_{part}_g{int(gen)}"


def connect(url: str, autocommit: bool = False):
    """A psycopg connection, or one sentence naming the server and what to check."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        raise RecsysError(
            f"cannot use the PostgreSQL server of {shown(url)} ({reason}); check that it runs "
            "and the URL's host, port, database and credentials"
        ) from None


@contextmanager
def export_session(url: str) -> Iterator[Any]:
    """A connection holding the export lock, with the generations table in place. A server
    error on the way (a full disk, a dropped connection) rolls the open transaction back (a load
    or a switch is one) and becomes one sentence."""
    import psycopg

    conn = connect(url)
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        refuse_foreign(conn, [GENERATIONS, *VIEWS])
        if conn.execute("SELECT to_regclass(%s)", (GENERATIONS,)).fetchone()[0] is None:
            conn.execute(GENERATIONS_DDL)
            conn.execute(f"COMMENT ON TABLE {GENERATIONS} IS '{OWNER}'")
        conn.commit()
        drop_orphans(conn)
        yield conn
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise RecsysError(
            f"the PostgreSQL server of {shown(url)} failed the export ("
            f"{lines[0] if lines else type(exc).__name__}); nothing was switched, the current "
            "generation stays: fix the server (space, memory) and re-run the export"
        ) from None
    finally:
        conn.close()  # ends the session (rolling back what is open): the advisory lock goes


def refuse_foreign(conn, names: list[str]) -> None:
    """Refuse, in one sentence, when a name recsys would use is taken by something it did not
    create (no :data:`OWNER` comment): recsys never replaces nor drops it."""
    rows = conn.execute(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "WHERE c.relname = ANY(%s) AND pg_table_is_visible(c.oid)",
        (names,),
    ).fetchall()
    foreign = sorted(name for name, comment in rows if comment != OWNER)
    if foreign:
        raise RecsysError(
            f"the PostgreSQL database already has {', '.join(foreign)}, which recsys did not "
            "create; rename or drop it yourself, or export to another database"
        )


def drop_orphans(conn) -> list[str]:
    """Drop generation tables recsys created that no ``recsys_generations`` row names (what a
    load interrupted between its commit steps could leave); returns their names."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c "
        "WHERE c.relname ~ '^recsys_(lists|similar)_g[0-9]+$' "
        "AND pg_table_is_visible(c.oid) AND obj_description(c.oid, 'pg_class') = %s "
        "AND substring(c.relname from '_g([0-9]+)$')::int NOT IN "
        f"(SELECT gen FROM {GENERATIONS})",
        (OWNER,),
    ).fetchall()
    for (name,) in rows:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        log.warning("dropped %s: an orphan of an interrupted export", name)
    conn.commit()
    return [name for (name,) in rows]


def generations(conn) -> list[dict[str, Any]]:
    """Every kept generation, oldest first (``ds`` then load order)."""
    cur = conn.execute(
        f"SELECT gen, ds, run, model_version, rows, users, popular, similar_rows, item_id_type, "
        f"loaded_at, current FROM {GENERATIONS} ORDER BY ds, gen"
    )
    names = [c.name for c in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def load(conn, night: Night) -> int:
    """Load ``night`` as a new generation (one transaction) and return its number; a count that
    differs from the published manifest rolls it back, and the current generation stays."""
    gen = conn.execute(f"SELECT coalesce(max(gen), 0) + 1 FROM {GENERATIONS}").fetchone()[0]
    refuse_foreign(conn, [table(p, gen) for p in PARTS])
    for part in PARTS:
        conn.execute(f"CREATE TABLE {table(part, gen)} ({COLUMNS[part]})")
        conn.execute(f"COMMENT ON TABLE {table(part, gen)} IS '{OWNER}'")
    _copy(conn, table("lists", gen), gen, night.lists, LIST_ORDER, night.model_version)
    fallback = night.popular.assign(**{S.USER_ID: None, S.SOURCE: S.SOURCE_POPULAR})
    _copy(conn, table("lists", gen), gen, fallback, LIST_ORDER, night.model_version)
    if night.similar is not None:
        _copy(conn, table("similar", gen), gen, night.similar, SIMILAR_ORDER, None)
    for part in PARTS:
        conn.execute(f"CREATE INDEX ON {table(part, gen)} {INDEXES[part]}")
        conn.execute(f"ANALYZE {table(part, gen)}")
    try:
        check(conn, gen, night)
    except RecsysError:
        conn.rollback()
        raise
    item_type = "int64" if night.lists[S.ITEM_ID].dtype.kind in "iu" else "string"
    conn.execute(
        f"INSERT INTO {GENERATIONS} (gen, ds, run, model_version, rows, users, popular, "
        "similar_rows, item_id_type) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (gen, night.ds, night.run, night.model_version, len(night.lists), night.users,
         len(night.popular), night.similar_rows, item_type),
    )  # fmt: skip
    conn.commit()
    return gen


LIST_ORDER = [S.USER_ID, S.RANK, S.ITEM_ID, S.SCORE, S.SOURCE, "version", S.TITLE]
SIMILAR_ORDER = [S.ITEM_ID, S.RANK, S.SIMILAR_ITEM_ID, S.SCORE, S.SIMILAR_TITLE]


def _copy(conn, name: str, gen: int, frame, order: list[str], version: str | None) -> None:
    """COPY a frame's columns (``order``; ``version`` is the night's model_version) into a
    generation table, ids as text, in batches of COPY's text format."""
    columns = ", ".join(c if c != "version" else "model_version" for c in order)
    out = frame.assign(version=version) if version is not None else frame
    with conn.cursor().copy(f"COPY {name} (gen, {columns}) FROM STDIN WITH (FORMAT text)") as copy:
        for start in range(0, len(out), 100_000):
            copy.write(copy_text(out.iloc[start : start + 100_000], order, gen))


def copy_text(frame, order: list[str], gen: int) -> str:
    """Rows of ``frame`` as COPY text lines: ``gen`` first, then ``order``; nulls as ``\\N``,
    backslash, tab, newline and carriage return escaped."""
    if frame.empty:
        return ""
    fields = []
    for col in order:
        values = frame[col]
        text = values.astype(str)
        if values.dtype.kind not in "iufb":
            text = (
                text.str.replace("\\", "\\\\", regex=False)
                .str.replace("\t", "\\t", regex=False)
                .str.replace("\n", "\\n", regex=False)
                .str.replace("\r", "\\r", regex=False)
            )
        fields.append(text.where(values.notna(), "\\N"))
    first = fields[0].radd(f"{gen}\t")
    return "\n".join(first.str.cat(fields[1:], sep="\t").tolist()) + "\n"


def check(conn, gen: int, night: Night) -> None:
    """Count what the generation holds against the published manifests (rows, users, popular
    list, similar rows); one sentence naming both counts when they differ."""
    rows, users, popular = conn.execute(
        "SELECT count(user_id), count(DISTINCT user_id), count(*) - count(user_id) "
        f"FROM {table('lists', gen)}"
    ).fetchone()
    similar = conn.execute(f"SELECT count(*) FROM {table('similar', gen)}").fetchone()[0]
    want = (night.manifest.rows, night.users, len(night.popular), night.similar_rows)
    got = (rows, users, popular, similar)
    if got != want:
        raise RecsysError(
            f"the generation loaded from {night.folder} holds {rows} rows, {users} users, "
            f"{popular} popular and {similar} similar rows, but its manifests say {want[0]}, "
            f"{want[1]}, {want[2]} and {want[3]}; it was dropped and the current generation "
            "stays (re-run `recsys score` and `recsys publish` for that night)"
        )


def switch(conn, gen: int) -> None:
    """Make ``gen`` current: both views and the ``current`` mark, in one transaction."""
    conn.execute(f"LOCK TABLE {GENERATIONS} IN EXCLUSIVE MODE")
    existing = [
        r[0]
        for r in conn.execute(
            "SELECT relname FROM pg_class WHERE relname = ANY(%s) AND pg_table_is_visible(oid)",
            (list(VIEWS),),
        ).fetchall()
    ]
    if existing:
        ordered = [v for v in VIEWS if v in existing]
        conn.execute(f"LOCK TABLE {', '.join(ordered)} IN ACCESS EXCLUSIVE MODE")
    for view, part in zip(VIEWS, PARTS, strict=True):
        conn.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table(part, gen)}")
        conn.execute(f"COMMENT ON VIEW {view} IS '{OWNER}'")
    conn.execute(f"UPDATE {GENERATIONS} SET current = (gen = %s)", (gen,))
    conn.commit()


def prune(conn, keep: int) -> list[int]:
    """Drop all but the ``keep`` newest generations (the current one always stays); returns
    the generations dropped."""
    kept = generations(conn)
    current = [g["gen"] for g in kept if g["current"]]
    newest = sorted((g["gen"] for g in kept), reverse=True)[: max(keep, 1)]
    gone = [g["gen"] for g in kept if g["gen"] not in newest and g["gen"] not in current]
    for gen in gone:
        for part in PARTS:
            conn.execute(f"DROP TABLE IF EXISTS {table(part, gen)}")
        conn.execute(f"DELETE FROM {GENERATIONS} WHERE gen = %s", (gen,))
    conn.commit()
    return gone


def export_night(url: str, root: str, ds: str | None, run: str | None, keep: int,
                 backwards: bool = False) -> dict[str, Any]:  # fmt: skip
    """Load the night as a generation unless it is loaded already, switch to it unless it is
    older than the current one (``backwards`` switches anyway), keep the ``keep`` newest."""
    connect(url).close()  # a server or credentials problem shows before the night is read
    night = read_night(root, ds, run)
    with export_session(url) as conn:
        kept = generations(conn)
        current = next((g for g in kept if g["current"]), None)
        same = next((g for g in kept if (g["ds"], g["run"]) == (night.ds, night.run)), None)
        older = current is not None and current["ds"] > night.ds and not backwards
        if older and same is None:
            log.info("ds=%s is older than the current ds=%s: not loaded", night.ds, current["ds"])
            return _outcome(night, None, current, switched=False)
        gen = same["gen"] if same else load(conn, night)
        switched = not older and (current is None or current["gen"] != gen)
        if switched:
            switch(conn, gen)
        dropped = prune(conn, keep)
    return {**_outcome(night, gen, current, switched), "dropped": dropped}


def rollback(url: str) -> dict[str, Any]:
    """Make the generation before the current one (by ds, then load order) current again."""
    with export_session(url) as conn:
        kept = generations(conn)
        current = next((g for g in kept if g["current"]), None)
        if current is None:
            raise RecsysError(f"{shown(url)} has no current generation to roll back from")
        earlier = [g for g in kept if (g["ds"], g["gen"]) < (current["ds"], current["gen"])]
        if not earlier:
            raise RecsysError(
                f"{shown(url)} keeps no generation older than the current one (ds={current['ds']}"
                "); nothing to roll back to"
            )
        target = earlier[-1]
        switch(conn, target["gen"])
    log.info("rolled back from generation %s to %s", current["gen"], target["gen"])
    return {"generation": target["gen"], "ds": target["ds"], "run": target["run"],
            "model_version": target["model_version"], "switched": True,
            "previous": current["gen"]}  # fmt: skip


def _outcome(night: Night, gen: int | None, current: dict | None, switched: bool) -> dict:
    return {
        "generation": gen,
        "ds": night.ds,
        "run": night.run,
        "model_version": night.model_version,
        "rows": night.manifest.rows,
        "users": night.users,
        "switched": switched,
        "previous": current["gen"] if current else None,
    }
