"""``/health/ready``: whether this process should get traffic now (``/health`` only says it is alive).

Ready means started (the schema was checked and the catalog loaded at start-up: before that the app
answers 503 "starting" by itself), not draining after a SIGTERM, and the store answering a ping."""

from __future__ import annotations

import falcon
import falcon.asgi
import orjson
from dishka import FromDishka

from apipod.application.ports.health import StoreProbe
from apipod.domain.errors import ApipodError
from apipod.entrypoints.http.request_scope import inject
from apipod.entrypoints.http.serving import ServingOf

READY = b'{"status":"ready"}'


def not_ready(status: str, reason: str) -> bytes:
    return orjson.dumps({"status": status, "reason": reason})


class Readiness:
    def __init__(self) -> None:
        self._serving_of = ServingOf()

    @inject
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, probe: FromDishka[StoreProbe]) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.set_header("cache-control", "no-store")
        if (await self._serving_of(req)).draining:
            resp.status = falcon.HTTP_503
            resp.data = not_ready("draining", "The gateway is shutting down.")
            return
        try:
            await probe.ping()
        except ApipodError as exc:
            resp.status = falcon.HTTP_503
            resp.data = not_ready("unavailable", exc.message)
            return
        resp.data = READY

    on_head = on_get
