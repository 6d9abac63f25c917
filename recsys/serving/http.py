"""``recsys serve``: a small HTTP endpoint over an exported store (Starlette + uvicorn).

    GET /users/{id}/recommendations?n=10&exclude=12,99   the user's list (or the popular one)
    GET /items/{id}/similar?n=10                         the item's nearest items
    GET /health                                          the current generation's ds, model_version

JSON answers. ``exclude`` filters item ids at read time from a longer read, so ``n`` items come
back as long as the stored list holds ``n`` beyond them. Store calls are blocking (psycopg,
redis-py), so they run in Starlette's thread pool, each thread with its own connection.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import asdict
from typing import Any

from recsys.errors import RecsysError
from recsys.export.stores import shown
from recsys.serving import Recommendation, Store, open_store

log = logging.getLogger(__name__)

MAX_N = 1000  # a list longer than any nightly table keeps


def _n(params, default: int = 10) -> int:
    text = params.get("n", str(default))
    if not text.isdigit() or not 1 <= int(text) <= MAX_N:
        raise ValueError(f"n must be a whole number from 1 to {MAX_N}, got {text!r}")
    return int(text)


def _items(rows: list[Recommendation]) -> dict[str, Any]:
    """A list as JSON: the generation once, then each row without it."""
    head = {"generation": None, "ds": None, "model_version": None}
    if rows:
        head = {"generation": rows[0].generation, "ds": rows[0].ds,
                "model_version": rows[0].model_version}  # fmt: skip
    drop = ("generation", "ds", "model_version")
    return {**head, "items": [{k: v for k, v in asdict(r).items() if k not in drop} for r in rows]}


def make_app(store: Store):
    """The ASGI app over ``store``."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def answer(call, *args) -> JSONResponse:
        try:
            return JSONResponse(await run_in_threadpool(call, *args))
        except RecsysError as exc:
            log.warning("%s", exc)
            return JSONResponse({"error": str(exc)}, status_code=503)

    def user_list(user: str, n: int, exclude: set[str]) -> dict[str, Any]:
        rows = store.recommend(user, n + len(exclude))
        kept = [r for r in rows if str(r.item_id) not in exclude][:n]
        return {"user_id": user, **_items(kept)}

    async def recommendations(request):
        try:
            n = _n(request.query_params)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        raw = request.query_params.get("exclude", "")
        exclude = {x.strip() for x in raw.split(",") if x.strip()}
        return await answer(user_list, request.path_params["user_id"], n, exclude)

    async def similar(request):
        try:
            n = _n(request.query_params)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        item = request.path_params["item_id"]
        return await answer(lambda: {"item_id": item, **_items(store.similar(item, n))})

    async def health(request):
        return await answer(store.health)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        store.close()

    routes = [
        Route("/users/{user_id}/recommendations", recommendations),
        Route("/items/{item_id}/similar", similar),
        Route("/health", health),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(url: str, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve ``url``'s current generation over HTTP until interrupted."""
    import uvicorn

    store = open_store(url)
    log.info("serving %s on http://%s:%d", shown(url), host, port)
    uvicorn.run(make_app(store), host=host, port=port, log_level="warning")
