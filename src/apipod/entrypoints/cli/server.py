"""The uvicorn server of one ``apipod serve`` process, as the single process and each worker run it."""

from __future__ import annotations

import uvicorn

from apipod.bootstrap.settings import Settings
from apipod.entrypoints.http.asgi import app_for, serving_for
from apipod.entrypoints.http.bounded_protocol import BoundedHttpToolsProtocol
from apipod.entrypoints.http.graceful_server import GracefulServer


def build_server(settings: Settings, env: dict[str, str], admin_secret: str, *, host: str, port: int) -> GracefulServer:
    """uvicorn on uvloop and httptools, with apipod's bounded request heads and graceful shutdown."""
    if env.get("APIPOD_GC_REPORT"):
        from apipod.entrypoints.cli.gc_watch import watch_gc

        watch_gc(env["APIPOD_GC_REPORT"])
    serving = serving_for(settings)
    app = app_for(settings, env, admin_secret, serving)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,  # httptools, with request heads bounded (header_limits.py)
        lifespan="on",
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,  # no "server: uvicorn" on every answer: it tells a scanner what to try
        log_config=None,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    return GracefulServer(config, serving, drain=settings.shutdown_drain_seconds, grace=settings.shutdown_grace_seconds)
