"""``GET /metrics``: Prometheus' text format, optionally behind ``METRICS_TOKEN`` (a bearer token)."""

from __future__ import annotations

import hmac

import falcon
import falcon.asgi

from apipod.application.ports import MetricsPage
from apipod.bootstrap.settings import Settings
from apipod.entrypoints.http.request_scope import container_of

_UNAUTHORIZED = b'{"error":{"type":"unauthorized","message":"The metrics need Authorization: Bearer <METRICS_TOKEN>."}}'


class Metrics:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        container = container_of(req)
        token = (await container.get(Settings)).metrics_token
        if token is not None and not _bearer_matches(req.get_header("authorization"), token):
            resp.status = 401
            resp.content_type = falcon.MEDIA_JSON
            resp.set_header("www-authenticate", 'Bearer realm="metrics"')
            resp.data = _UNAUTHORIZED
            return
        body, content_type = (await container.get(MetricsPage)).render()
        resp.content_type = content_type
        resp.data = body


def _bearer_matches(header: str | None, token: str) -> bool:
    """Constant-time comparison, so the token cannot be guessed a byte at a time."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
