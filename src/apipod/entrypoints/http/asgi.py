"""The ASGI application from the environment: ``uvicorn apipod.entrypoints.http.asgi:create_app --factory``."""

from __future__ import annotations

import gc
import logging

from dishka import AsyncContainer

from apipod.bootstrap.runtime import Runtime, resolve_admin_secret, start_runtime
from apipod.bootstrap.settings import Settings, environment, load_settings
from apipod.entrypoints.http.admin_guard import AdminGuard
from apipod.entrypoints.http.app import create_app as create_http_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from apipod.entrypoints.http.streaming import ASGIApp

log = logging.getLogger("apipod")


def app_for(settings: Settings, env: dict[str, str], admin_secret: str) -> ASGIApp:
    runtime: list[Runtime] = []

    def root() -> AsyncContainer | None:
        return runtime[0].container if runtime else None

    async def startup() -> None:
        started = await start_runtime(settings, env, HttpRequestProvider())
        await started.container.get(AdminGuard)  # APP objects exist before the first request (no lock)
        runtime.append(started)
        # PERF: everything built at start-up lives as long as the process; moving it out of the collector's
        # generations keeps full collections short under load.
        gc.collect()
        gc.freeze()

    async def shutdown() -> None:
        while runtime:
            await runtime.pop().close()

    return create_http_app(
        root, admin_secret=admin_secret, max_body_bytes=settings.max_body_bytes, startup=startup, shutdown=shutdown
    )


def create_app() -> ASGIApp:
    env = environment()
    settings = load_settings(env)
    secret, generated = resolve_admin_secret(settings)
    if generated:
        log.warning("generated an admin secret; it is kept in the file beside the database")
    return app_for(settings, env, secret)
