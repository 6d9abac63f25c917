"""Reading the exported generations: what an application calls per request.

    store = open_store("postgresql://app@db:5432/shop")   # or "redis://cache:6379/0"
    store.recommend(42, n=10)   # the user's list, or the night's popular list for an unknown user
    store.similar(1193, n=5)    # an item's nearest items, when the night wrote similar_items

Every call reads the current generation only: PostgreSQL answers in one statement (one
snapshot) over the views the switch re-points; Redis reads the pointer, then one key holding the
whole list. A read that races a switch gets one whole list of one generation or the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from recsys.export.stores import POSTGRES, kind, with_password


@dataclass(frozen=True)
class Recommendation:
    """One row of a list: original ids, rank order, and which generation it came from."""

    rank: int
    item_id: Any  # the original id, with its type (int64 ids as int)
    score: float
    source: str  # "model", or "popular" (the fallback list for users the table does not hold)
    model_version: str
    title: str | None
    ds: str
    generation: int


class Store(Protocol):
    """What :func:`open_store` returns."""

    def recommend(self, user_id: Any, n: int = 10) -> list[Recommendation]: ...

    def similar(self, item_id: Any, n: int = 10) -> list[Recommendation]: ...

    def health(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def open_store(url: str) -> Store:
    """A reader of the store ``url`` names (``postgresql://...`` or ``redis://...``); it opens
    one connection per thread that uses it."""
    if kind(url) == POSTGRES:
        from recsys.serving.postgres import PostgresStore

        return PostgresStore(with_password(url))
    from recsys.serving.redis import RedisStore

    return RedisStore(with_password(url))
