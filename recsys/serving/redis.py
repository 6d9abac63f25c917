"""Reading the current generation from Redis: the pointer, then one key holding a whole list.

A call reads ``recsys:current``, then fetches the user's key and the fallback key of that
generation in one MGET: each value is a whole list of one generation, so nothing can mix. If the
generation expired between the two reads (a reader slower than the grace period), the pointer is
read again.
"""

from __future__ import annotations

import json
from typing import Any

from recsys.errors import RecsysError
from recsys.export.redis import CURRENT, GENS, connect, gen_key
from recsys.export.stores import shown
from recsys.serving import Recommendation


class RedisStore:
    """Reads of one Redis db (redis-py's client is thread-safe: a pool of connections)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = connect(url)
        self._ds: dict[int, str] = {}

    def _read(self, parts: list[str]) -> tuple[int, list[str | None]]:
        """The current generation and the values of ``parts`` in it (one MGET)."""
        import redis

        try:
            for _ in range(3):
                gen = self.client.get(CURRENT)
                if gen is None:
                    raise RecsysError(
                        f"{shown(self.url)} holds no exported generation; run `recsys export "
                        "--to` first"
                    )
                values = self.client.mget([gen_key(gen, p) for p in parts])
                if values[-1] is not None:  # the last part always exists while gen lives
                    return int(gen), values
        except redis.RedisError as exc:
            raise RecsysError(f"Redis at {shown(self.url)} failed a read ({exc})") from None
        raise RecsysError(f"{shown(self.url)}: the current generation vanished while reading")

    def _ds_of(self, gen: int) -> str:
        if gen not in self._ds:
            record = self.client.hget(GENS, gen)
            self._ds[gen] = json.loads(record)["ds"] if record else ""
        return self._ds[gen]

    def _rows(self, gen: int, value: str, n: int, source: str | None) -> list[Recommendation]:
        body = json.loads(value)
        ds = self._ds_of(gen)
        out = []
        for rank, row in enumerate(body["items"][:n], start=1):
            item, score, *rest = row
            title = rest[-1]
            src = source or rest[0]
            out.append(Recommendation(rank, item, float(score), src, body["v"], title, ds, gen))
        return out

    def recommend(self, user_id: Any, n: int = 10) -> list[Recommendation]:
        """The user's list from the current generation, or its popular list (source popular)."""
        gen, (own, popular) = self._read([f"u:{user_id}", "popular"])
        return self._rows(gen, own if own is not None else popular, n, None)

    def similar(self, item_id: Any, n: int = 10) -> list[Recommendation]:
        """The item's nearest items from the current generation (empty when it has none)."""
        gen, (near, _) = self._read([f"s:{item_id}", "popular"])
        return [] if near is None else self._rows(gen, near, n, "similar")

    def health(self) -> dict[str, Any]:
        """The current generation: number, ds, run, model_version, rows, users, loaded_at."""
        gen = self.client.get(CURRENT)
        record = self.client.hget(GENS, gen) if gen is not None else None
        if record is None:
            raise RecsysError(
                f"{shown(self.url)} holds no exported generation; run `recsys export --to` first"
            )
        r = json.loads(record)
        return {"generation": int(gen), "ds": r["ds"], "run": r["run"],
                "model_version": r["model_version"], "rows": r.get("rows"),
                "users": r.get("users"), "loaded_at": r.get("loaded_at")}  # fmt: skip

    def close(self) -> None:
        self.client.close()
