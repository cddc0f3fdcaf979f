"""The ASGI application from the environment: ``uvicorn apipod.entrypoints.http.asgi:create_app --factory``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from dishka import AsyncContainer

from apipod.application.ports import MetricsPage
from apipod.application.ports.health import StoreProbe
from apipod.application.response_history import ResponseHistory
from apipod.bootstrap.runtime import Runtime, resolve_admin_secret, start_runtime
from apipod.bootstrap.settings import Settings, environment, load_settings
from apipod.entrypoints.http import collector
from apipod.entrypoints.http.admin_guard import AdminGuard
from apipod.entrypoints.http.app import create_app as create_http_app
from apipod.entrypoints.http.health import not_ready
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from apipod.entrypoints.http.serving import Serving, ServingProvider
from apipod.entrypoints.http.streaming import ASGIApp, Receive, Scope, Send

log = logging.getLogger("apipod")


def app_for(settings: Settings, env: dict[str, str], admin_secret: str, serving: Serving | None = None) -> ASGIApp:
    """The app over a runtime started on the lifespan's start-up. ``serving`` is shared with the server
    that drains it on SIGTERM (``apipod serve``); one is made from the settings otherwise."""
    if serving is None:
        serving = serving_for(settings)
    runtime: list[Runtime] = []
    thresholds: list[tuple[int, int, int]] = []

    def root() -> AsyncContainer | None:
        return runtime[0].container if runtime else None

    async def startup() -> None:
        started = await start_runtime(settings, env, HttpRequestProvider(), ServingProvider(serving))
        for needed in (
            AdminGuard,
            StoreProbe,
            MetricsPage,
            ResponseHistory,
        ):  # APP objects exist before the first request (no lock)
            await started.container.get(needed)
        runtime.append(started)
        thresholds.append(collector.settle())

    async def shutdown() -> None:
        while runtime:
            await runtime.pop().close()
        while thresholds:
            collector.restore(thresholds.pop())

    app = create_http_app(
        root, admin_secret=admin_secret, max_body_bytes=settings.max_body_bytes, startup=startup, shutdown=shutdown
    )
    return StartingReadiness(app, lambda: bool(runtime))


def serving_for(settings: Settings) -> Serving:
    return Serving(
        keepalive_seconds=settings.sse_keepalive_seconds, flush_interval_ms=settings.stream_flush_interval_ms
    )


STARTING = not_ready("starting", "The gateway is starting.")


class StartingReadiness:
    """Until start-up has finished every request gets a 503; ``/health/ready`` gets it in its own shape
    (``{"status": "starting", "reason"}``), the rest in the app's."""

    def __init__(self, app: ASGIApp, started: Callable[[], bool]) -> None:
        self._app = app
        self._started = started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/health/ready" and not self._started():
            headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": STARTING})
            return
        await self._app(scope, receive, send)


def create_app() -> ASGIApp:
    env = environment()
    settings = load_settings(env)
    secret, generated = resolve_admin_secret(settings)
    if generated:
        log.warning("generated an admin secret; it is kept in the file beside the database")
    return app_for(settings, env, secret)
