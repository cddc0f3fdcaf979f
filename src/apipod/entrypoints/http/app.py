"""The Falcon ASGI application: routes, error rendering, and the start-up/shutdown hooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import falcon
import falcon.asgi
from dishka import AsyncContainer

from apipod.domain.errors import ApipodError
from apipod.entrypoints.http import chat, console, gemini, health, metrics, responses
from apipod.entrypoints.http.admin_routes import add_admin_routes
from apipod.entrypoints.http.admin_session import AdminSessions
from apipod.entrypoints.http.client_dialects import AnthropicClients, OpenAIClients
from apipod.entrypoints.http.errors import handle_apipod_error, handle_unexpected, serialize_http_error
from apipod.entrypoints.http.header_limits import HeaderLimits
from apipod.entrypoints.http.request_scope import RequestScope
from apipod.entrypoints.http.streaming import ASGIApp


class DialectMiddleware:
    """Copies the routed resource's dialect to the request, so errors render in the caller's protocol."""

    async def process_resource(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, resource: object, params: dict[str, Any]
    ) -> None:
        dialect = getattr(resource, "dialect", None)
        if isinstance(dialect, str) and dialect:
            req.context.dialect = dialect


class LifecycleMiddleware:
    """Runs the start-up and shutdown hooks on ASGI lifespan events."""

    def __init__(self, startup: Callable[[], Awaitable[None]], shutdown: Callable[[], Awaitable[None]]) -> None:
        self._startup = startup
        self._shutdown = shutdown

    async def process_startup(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        await self._startup()

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        await self._shutdown()


async def _nothing() -> None:
    return None


def create_app(
    root: Callable[[], AsyncContainer | None],
    *,
    admin_secret: str,
    max_body_bytes: int,
    startup: Callable[[], Awaitable[None]] = _nothing,
    shutdown: Callable[[], Awaitable[None]] = _nothing,
) -> ASGIApp:
    """The ASGI app. ``root()`` is the started container (None until ``startup`` has built it, since its
    objects are created asynchronously); each request runs in a REQUEST scope of it."""
    middleware: list[Any] = [LifecycleMiddleware(startup, shutdown), DialectMiddleware()]
    app = falcon.asgi.App(middleware=middleware, cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = True
    size = max_body_bytes
    app.add_route("/health", chat.Health())
    app.add_route("/health/ready", health.Readiness())
    app.add_route("/metrics", metrics.Metrics())
    app.add_route("/v1/chat/completions", chat.ChatResource(OpenAIClients(), max_body_bytes=size))
    app.add_route("/chat/completions", chat.ChatResource(OpenAIClients(), max_body_bytes=size))
    app.add_route("/v1/messages", chat.ChatResource(AnthropicClients(), max_body_bytes=size))
    app.add_route("/v1/messages/count_tokens", chat.CountTokens(max_body_bytes=size))
    app.add_route("/v1/models", chat.Models())
    app.add_route("/v1/models/{target:path}", gemini.GeminiModel(max_body_bytes=size, openai_too=True))
    app.add_route("/v1beta/models", gemini.GeminiModels())
    app.add_route("/v1beta/models/{target:path}", gemini.GeminiModel(max_body_bytes=size))
    for prefix in ("/v1", ""):
        app.add_route(f"{prefix}/responses", responses.CreateResponse(max_body_bytes=size))
        app.add_route(f"{prefix}/responses/{{response_id}}", responses.StoredResponse())
    app.add_route("/v1/key", chat.KeyInfo())
    add_admin_routes(app, admin_secret=admin_secret, max_body_bytes=size, sessions=AdminSessions(admin_secret))
    console.add_routes(app, admin_secret=admin_secret)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(ApipodError, handle_apipod_error)
    app.set_error_serializer(serialize_http_error)
    return HeaderLimits(RequestScope(app, root))  # type: ignore[arg-type]
