"""Loading a published night into the serving stores applications read (``recsys export``).

Each export is a *generation* written beside the live one, checked against the night's
manifests, then made current in one atomic step; see :mod:`recsys.export.postgres` and
:mod:`recsys.export.redis`. Reading it back: :mod:`recsys.serving`.
"""

from __future__ import annotations

from typing import Any

from recsys.export.stores import POSTGRES, kind, with_password


def export(url: str, root: str, ds: str | None = None, run: str | None = None, keep: int = 3,
           backwards: bool = False, grace: int = 3600) -> dict[str, Any]:  # fmt: skip
    """Export the published night (``_LATEST``, or ``ds``/``run``) to the store of ``url``."""
    from recsys.errors import RecsysError

    if keep < 1:
        raise RecsysError(f"--keep must be at least 1 (the current generation), got {keep}")
    store = kind(url)
    if store == POSTGRES:
        from recsys.export import postgres

        out = postgres.export_night(with_password(url), root, ds, run, keep, backwards)
    else:
        from recsys.export import redis

        out = redis.export_night(with_password(url), root, ds, run, keep, backwards, grace)
    return {"store": store, **out}


def rollback(url: str) -> dict[str, Any]:
    """Make the generation before the current one current again, in one step."""
    store = kind(url)
    if store == POSTGRES:
        from recsys.export import postgres as module
    else:
        from recsys.export import redis as module
    return {"store": store, **module.rollback(with_password(url))}
