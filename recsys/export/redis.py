"""Export a night to Redis as a generation, switched by one pointer key (redis-py).

A generation ``N`` is keys under ``recsys:g<N>:``: one JSON value per user (``u:<user_id>``,
the whole list, so a reader gets one list in one command), ``popular`` (the fallback list) and
one per item of ``similar_items`` (``s:<item_id>``), written through pipelines. When its counts
match the published manifests, ``SET recsys:current N`` switches every reader at once. The
generation's record (``recsys:gens``, a hash of JSON) says ``loading`` until then, so the next
export finds and deletes the keys of a killed one. The ``keep`` newest generations stay for
rollback; older ones get a TTL of ``grace`` seconds instead of a delete, since a reader may still
hold their number. ``recsys:owner`` marks the key space as recsys's: a ``recsys:`` key space
without it is refused, never overwritten. Exports take ``recsys:lock`` (a short TTL renewed while
the export lives, so a killed export frees it in seconds).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recsys import schema as S
from recsys.errors import RecsysError
from recsys.export.night import Night, read_night
from recsys.export.stores import OWNER, shown

log = logging.getLogger(__name__)

PREFIX = "recsys:"
OWNER_KEY, CURRENT, GENS, NEXT, LOCK = (PREFIX + k for k in ("owner", "current", "gens", "next",
                                                              "lock"))  # fmt: skip
LOCK_TTL = 15  # seconds; renewed while the export lives, so only a dead export's lock runs out
BATCH = 2000  # SETs a pipeline round trip


def gen_key(gen: int | str, part: str) -> str:
    """The key of one value of generation ``gen`` (``u:<user>``, ``popular``, ``s:<item>``)."""
    return f"{PREFIX}g{gen}:{part}"


def connect(url: str):
    """A redis-py client that answered PING, or one sentence naming the server."""
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=10, decode_responses=True)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise RecsysError(
            f"cannot use the Redis server of {shown(url)} ({exc}); check that it runs and the "
            "URL's host, port, db number and password"
        ) from None
    return client


def _renew(client, token: str, stop: threading.Event) -> None:
    """Keep renewing the export lock while this export lives (a killed one stops renewing)."""
    while not stop.wait(LOCK_TTL / 3):
        try:
            if client.get(LOCK) == token:
                client.expire(LOCK, LOCK_TTL)
        except Exception:  # the export itself meets the same server error and says it
            return


@contextmanager
def export_session(url: str) -> Iterator[Any]:
    """A client holding the export lock, the key space checked and orphans gone; a server
    error on the way is one sentence (the pointer moves in one command, or not at all)."""
    import redis

    client = connect(url)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + 2 * LOCK_TTL
    while not client.set(LOCK, token, nx=True, ex=LOCK_TTL):
        if time.monotonic() > deadline:
            raise RecsysError(f"another export holds {LOCK} on {shown(url)}; wait for it to end")
        time.sleep(0.2)
    stop = threading.Event()
    threading.Thread(target=_renew, args=(client, token, stop), daemon=True).start()
    try:
        claim(client, url)
        drop_orphans(client)
        yield client
    except redis.RedisError as exc:
        raise RecsysError(
            f"the Redis server of {shown(url)} failed the export ({exc}); the pointer stays "
            "where it was: fix the server and re-run the export"
        ) from None
    finally:
        stop.set()
        try:
            if client.get(LOCK) == token:
                client.delete(LOCK)
        except redis.RedisError:
            pass  # the lock runs out by itself
        client.close()


def claim(client, url: str) -> None:
    """Mark the ``recsys:`` key space as recsys's, or refuse one that recsys did not create."""
    owner = client.get(OWNER_KEY)
    if owner == OWNER:
        return
    taken = owner is not None or any(
        k != LOCK for k in client.scan_iter(match=PREFIX + "*", count=1000)
    )
    if taken:
        raise RecsysError(
            f"{shown(url)} already holds recsys: keys that recsys did not create; remove them "
            "yourself or export to another db number"
        )
    client.set(OWNER_KEY, OWNER)


def generations(client) -> dict[int, dict[str, Any]]:
    """Every generation's record by number."""
    return {int(g): json.loads(v) for g, v in client.hgetall(GENS).items()}


def current_gen(client) -> int | None:
    value = client.get(CURRENT)
    return int(value) if value is not None else None


def delete_gen(client, gen: int) -> int:
    """Delete a generation's keys and record; returns the keys deleted."""
    keys = list(client.scan_iter(match=gen_key(gen, "*"), count=5000))
    for start in range(0, len(keys), 5000):
        client.unlink(*keys[start : start + 5000])
    client.hdel(GENS, gen)
    return len(keys)


def drop_orphans(client) -> list[int]:
    """Delete generations still ``loading`` (their export was killed) and forget expired ones."""
    gone = []
    for gen, record in generations(client).items():
        if record["state"] == "loading":
            log.warning("deleting generation %s: an orphan of an interrupted export", gen)
            delete_gen(client, gen)
            gone.append(gen)
        elif record["state"] == "expiring" and record.get("expires", 0) < time.time():
            client.hdel(GENS, gen)
    return gone


def _lists(frame, columns: list[str], key_col: str) -> Iterator[tuple[Any, list]]:
    """(key, [[col values...], ...]) per run of equal ``key_col`` in a frame sorted by it."""
    keys = frame[key_col].tolist()
    rows = list(zip(*(frame[c].tolist() for c in columns), strict=True))
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield keys[start], [list(r) for r in rows[start:i]]
            start = i


def _values(night: Night, gen: int) -> Iterator[tuple[str, str, str, int]]:
    """(kind, key, JSON value, rows) of every value of the generation; kind ``u`` (a user's
    list), ``p`` (the fallback) or ``s`` (an item's similar items)."""
    version = night.model_version
    cols = [S.ITEM_ID, S.SCORE, S.SOURCE, S.TITLE]
    for user, items in _lists(night.lists, cols, S.USER_ID):
        body = {"v": version, "g": gen, "items": items}
        yield "u", gen_key(gen, f"u:{user}"), json.dumps(body), len(items)
    popular = night.popular.assign(source=S.SOURCE_POPULAR)
    items = [list(r) for r in zip(*(popular[c].tolist() for c in cols), strict=True)]
    body = {"v": version, "g": gen, "items": items}
    yield "p", gen_key(gen, "popular"), json.dumps(body), len(items)
    if night.similar is not None:
        cols = [S.SIMILAR_ITEM_ID, S.SCORE, S.SIMILAR_TITLE]
        for item, items in _lists(night.similar, cols, S.ITEM_ID):
            body = {"v": version, "g": gen, "items": items}
            yield "s", gen_key(gen, f"s:{item}"), json.dumps(body), len(items)


def load(client, night: Night, url: str) -> int:
    """Write the night as a new generation and check it; returns its number. Any failure
    (``maxmemory`` reached, a count that differs from the manifest) deletes it again."""
    import redis

    gen = int(client.incr(NEXT))
    record = {"ds": night.ds, "run": night.run, "model_version": night.model_version,
              "state": "loading", "loaded_at": time.time()}  # fmt: skip
    client.hset(GENS, gen, json.dumps(record))
    try:
        rows = _write(client, _values(night, gen))
        check(client, gen, night, rows)
    except redis.RedisError as exc:
        delete_gen(client, gen)
        if "maxmemory" in str(exc) or "OOM" in str(exc):
            raise RecsysError(
                f"the Redis server of {shown(url)} reached its maxmemory while loading "
                f"{night.folder}; the generation was deleted and the current one stays (raise "
                "maxmemory, or lower keep so fewer generations are held)"
            ) from None
        raise RecsysError(f"loading into {shown(url)} failed ({exc}); re-run the export") from None
    except RecsysError:
        delete_gen(client, gen)
        raise
    client.hset(GENS, gen, json.dumps({**record, "state": "ready", "rows": rows["u"],
                                       "users": night.users}))  # fmt: skip
    return gen


def _write(client, values: Iterator[tuple[str, str, str, int]]) -> dict[str, int]:
    """SET every value through pipelines of :data:`BATCH`; returns the rows written by kind."""
    rows = {"u": 0, "p": 0, "s": 0}
    pipe = client.pipeline(transaction=False)
    pending = 0
    for kind, key, value, n in values:
        pipe.set(key, value)
        rows[kind] += n
        pending += 1
        if pending == BATCH:
            pipe.execute()
            pending = 0
    pipe.execute()
    return rows


def check(client, gen: int, night: Night, rows: dict[str, int]) -> None:
    """Users (keys counted in the store), rows, the fallback list and similar rows against the
    manifests; one sentence naming both counts when they differ."""
    users = sum(1 for _ in client.scan_iter(match=gen_key(gen, "u:*"), count=5000))
    popular = rows["p"] if client.exists(gen_key(gen, "popular")) else 0
    got = (rows["u"], users, popular, rows["s"])
    want = (night.manifest.rows, night.users, len(night.popular), night.similar_rows)
    if got != want:
        raise RecsysError(
            f"the generation loaded from {night.folder} holds {got[0]} rows, {users} users, "
            f"{popular} popular and {got[3]} similar rows, but its manifests say {want[0]}, "
            f"{want[1]}, {want[2]} and {want[3]}; it was deleted and the current generation "
            "stays (re-run `recsys score` and `recsys publish` for that night)"
        )


def expire_old(client, keep: int, grace: int) -> list[int]:
    """Give every generation but the ``keep`` newest (and the current one) a TTL of ``grace``
    seconds; returns them."""
    gens = generations(client)
    current = current_gen(client)
    ready = sorted((g for g, r in gens.items() if r["state"] == "ready"), reverse=True)
    old = [g for g in ready[max(keep, 1) :] if g != current]
    for gen in old:
        pipe = client.pipeline(transaction=False)
        for key in client.scan_iter(match=gen_key(gen, "*"), count=5000):
            pipe.expire(key, grace)
        pipe.execute()
        record = {**gens[gen], "state": "expiring", "expires": time.time() + grace}
        client.hset(GENS, gen, json.dumps(record))
    return old


def export_night(url: str, root: str, ds: str | None, run: str | None, keep: int,
                 backwards: bool = False, grace: int = 3600) -> dict[str, Any]:  # fmt: skip
    """Load the night unless it is loaded already, switch to it unless it is older than the
    current one (``backwards`` switches anyway), expire all but the ``keep`` newest."""
    connect(url).close()  # a server or credentials problem shows before the night is read
    night = read_night(root, ds, run)
    with export_session(url) as client:
        gens = generations(client)
        current = current_gen(client)
        cur = gens.get(current) if current is not None else None
        same = [g for g, r in gens.items() if r["state"] == "ready"
                and (r["ds"], r["run"]) == (night.ds, night.run)]  # fmt: skip
        older = cur is not None and cur["ds"] > night.ds and not backwards
        out = {"ds": night.ds, "run": night.run, "model_version": night.model_version,
               "rows": night.manifest.rows, "users": night.users, "previous": current}  # fmt: skip
        if older and not same:
            log.info("ds=%s is older than the current ds=%s: not loaded", night.ds, cur["ds"])
            return {**out, "generation": None, "switched": False}
        gen = same[0] if same else load(client, night, url)
        switched = not older and current != gen
        if switched:
            client.set(CURRENT, gen)  # the switch: one command
        expired = expire_old(client, keep, grace)
    return {**out, "generation": gen, "switched": switched, "dropped": expired}


def rollback(url: str) -> dict[str, Any]:
    """Point ``recsys:current`` at the generation before the current one (by ds, then load
    order) among those kept."""
    with export_session(url) as client:
        gens = generations(client)
        current = current_gen(client)
        if current is None or current not in gens:
            raise RecsysError(f"{shown(url)} has no current generation to roll back from")
        at = (gens[current]["ds"], current)
        earlier = sorted((r["ds"], g) for g, r in gens.items() if r["state"] == "ready"
                         and (r["ds"], g) < at)  # fmt: skip
        if not earlier:
            raise RecsysError(
                f"{shown(url)} keeps no generation older than the current one "
                f"(ds={at[0]}); nothing to roll back to"
            )
        gen = earlier[-1][1]
        client.set(CURRENT, gen)
        record = gens[gen]
    log.info("rolled back from generation %s to %s", current, gen)
    return {
        "generation": gen,
        "ds": record["ds"],
        "run": record["run"],
        "model_version": record["model_version"],
        "switched": True,
        "previous": current,
    }
