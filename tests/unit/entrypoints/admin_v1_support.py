"""The admin API v1 over the in-memory world: ``create_app`` itself, or, for tests that stand in their own
session check, the admin routes alone with the same middleware and error rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import falcon.asgi
import httpx

from apipod.domain.errors import ApipodError
from apipod.entrypoints.http.admin_auth import SessionCheck
from apipod.entrypoints.http.admin_routes import add_admin_routes
from apipod.entrypoints.http.app import DialectMiddleware, create_app
from apipod.entrypoints.http.errors import handle_apipod_error, handle_unexpected, serialize_http_error
from apipod.entrypoints.http.header_limits import HeaderLimits
from apipod.entrypoints.http.request_scope import RequestScope
from tests.unit.application.fakes import World

SECRET = "s" * 24
ADMIN = {"x-admin-secret": SECRET}


def admin_app(world: World, *, sessions: SessionCheck | None = None, max_body_bytes: int = 100_000) -> Any:
    if sessions is None:
        return create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=max_body_bytes)
    app: falcon.asgi.App[Any, Any] = falcon.asgi.App(middleware=[DialectMiddleware()], cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = True
    add_admin_routes(app, admin_secret=SECRET, max_body_bytes=max_body_bytes, sessions=sessions)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(ApipodError, handle_apipod_error)
    app.set_error_serializer(serialize_http_error)
    return HeaderLimits(RequestScope(app, lambda: world.container))  # type: ignore[arg-type]


@asynccontextmanager
async def admin_client(world: World, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=admin_app(world, **options))
    async with httpx.AsyncClient(transport=transport, base_url="http://apipod") as http:
        yield http
