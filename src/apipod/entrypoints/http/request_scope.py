"""Falcon and dishka: one dishka REQUEST scope per HTTP request, open until the response (a stream included)
has been sent, and the per-request objects that live in it.

``RequestScope`` is pure ASGI, outside Falcon, because Falcon finishes its middleware before a streamed body
is sent: only a wrapper around the whole app sees the end of a stream. Responders take what they need as
``FromDishka[...]`` parameters (``inject``).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NewType, TypeVar
from urllib.parse import parse_qs

import attrs
import falcon.asgi
from dishka import AsyncContainer, Provider, Scope, from_context, provide
from dishka.integrations.base import wrap_injection

from apipod.application.authenticate_key import AuthenticateKey, Principal
from apipod.application.gateway import Gateway
from apipod.application.ports import REQUEST_NOTES, Clock, FinishedRequest, IdGenerator, RequestNotes, Telemetry
from apipod.domain.errors import AuthenticationError, StorageError
from apipod.entrypoints.http.admin_guard import AdminGuard
from apipod.entrypoints.http.client_gone import ClientGone, client_gone_of
from apipod.entrypoints.http.errors import is_gemini_path
from apipod.entrypoints.http.streaming import ASGIApp, CoalescingSend, Receive, Send
from apipod.entrypoints.http.streaming import Scope as AsgiScope

log = logging.getLogger("apipod.http")
access_log = logging.getLogger("apipod.access")

Message = MutableMapping[str, Any]

CONTAINER = "apipod.container"
"""Where the request's container sits in the ASGI scope (``req.scope``), for ``inject``."""
ROOT = "apipod.root"
"""... and the process's (APP) container."""

RequestId = NewType("RequestId", str)
"""One id per request, made once: in the ``x-request-id`` answer header and the request's usage row."""

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_DISCONNECT: Message = {"type": "http.disconnect"}
CLIENT_CLOSED = 499


@attrs.define(eq=False)
class Exchange:
    """The request as the server handed it over: with the request id, the REQUEST scope's context."""

    scope: AsgiScope
    receive: Receive

    def end(self) -> None:
        """The request is over: let go of what the server handed over. The container keeps its context (some
        dishka versions in a reference cycle of their own), and with it the request's body and events."""
        self.scope = {}
        self.receive = _ended


async def _ended() -> Message:
    return _DISCONNECT


class RequestLifetime:
    """What a request must close when it ends, and its client's disconnect, noticed while it waits.

    ``watch()`` (after the body is read) starts listening for the disconnect; from then on, a client that
    goes away cancels the request at once, whether it is still waiting for the upstream's first event or
    streaming, so the upstream call is cancelled and the books closed without waiting for the next chunk.
    Under ``apipod serve`` the server says so by a callback (``client_gone``); under any other server a task
    waits on ``receive()`` for the disconnect.
    """

    __slots__ = ("_closers", "_gone", "_hook", "_receive", "_task", "_watcher", "disconnected", "responded")

    def __init__(self, receive: Receive, client_gone: ClientGone | None = None) -> None:
        self._receive = receive
        self._hook = client_gone
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self._gone: asyncio.Event | None = None
        self.disconnected = False
        self.responded = False

    def on_close(self, close: Callable[[], Awaitable[None]]) -> None:
        self._closers.append(close)

    def watch(self) -> None:
        if self._hook is not None:
            self._hook.watch(self._client_left)  # the server's callback: receive() stays the server's own
        elif self._watcher is None:
            self._gone = asyncio.Event()
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def receive(self) -> Message:
        """The app's ``receive``: while a task watches, the watcher alone reads from the server."""
        if self._gone is None:
            return await self._receive()
        await self._gone.wait()
        return _DISCONNECT

    async def _watch(self) -> None:
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except asyncio.CancelledError:
            # ``close()`` ends the watch: return rather than end cancelled. A cancelled task keeps its
            # CancelledError, whose traceback holds this frame, which holds the request: a reference cycle per
            # request, left for the full collections (the garbage collector's longest pauses) to find.
            return
        self._client_left()

    def _client_left(self) -> None:
        self.disconnected = True
        if self._gone is not None:
            self._gone.set()
        if not self.responded and self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        """Stop watching and run every closer, each on its own. The tasks are let go (the watcher's context
        holds this request's objects: kept, the pair would be a reference cycle per request)."""
        watcher, self._watcher, self._task = self._watcher, None, None
        # The container's context holds this lifetime, and the server's ``receive`` (uvicorn's: a method of the
        # request's cycle) holds the scope, which holds the container: let go of it, or every request is left in
        # a reference cycle for the garbage collector.
        self._receive = _ended
        if watcher is not None:
            watcher.cancel()
        hook, self._hook = self._hook, None
        if hook is not None:
            hook.unwatch()
        closers, self._closers = self._closers, []
        for close in closers:
            try:
                await close()
            except Exception:
                log.exception("closing a request's resource failed")


class HttpRequestProvider(Provider):
    """The REQUEST scope's objects."""

    scope = Scope.REQUEST
    exchange = from_context(provides=Exchange, scope=Scope.REQUEST)
    request_id = from_context(provides=RequestId, scope=Scope.REQUEST)

    @provide(scope=Scope.APP)
    def admin_guard(self) -> AdminGuard:
        """One failure table per process: the throttle of wrong admin secrets."""
        return AdminGuard()

    # made and closed by ``RequestScope`` (PERF: no async generator provider per request)
    lifetime = from_context(provides=RequestLifetime, scope=Scope.REQUEST)

    @provide
    async def principal(self, exchange: Exchange, authenticate: AuthenticateKey) -> Principal:
        """The caller's key and plan, from ``Authorization: Bearer`` or ``x-api-key`` (401/403 otherwise)."""
        return await authenticate.execute(credential_of(exchange.scope))


def credential_of(scope: AsgiScope) -> str | None:
    """``Authorization: Bearer <key>``, ``x-api-key`` or Gemini's ``x-goog-api-key``; on Gemini's URLs also
    ``?key=`` (what Google's own API takes; never written to the access log, which logs the path only).
    A malformed Authorization header is a 401."""
    api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise AuthenticationError("Malformed Authorization header: expected 'Bearer <key>'.")
            return token
        if (name == b"x-api-key" or name == b"x-goog-api-key") and value:
            api_key = bytes(value).decode("latin-1")
    if api_key is None and scope.get("query_string") and is_gemini_path(scope["path"]):
        for key in parse_qs(bytes(scope["query_string"]).decode("latin-1")).get("key", ()):
            if key:
                return key
    return api_key


def request_id_of(scope: AsgiScope, new_id: Callable[[], str]) -> RequestId:
    """The client's ``x-request-id`` when it is well formed, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _CLIENT_REQUEST_ID.fullmatch(text):
                return RequestId(text)
            break
    return RequestId(new_id())


def dialect_of_path(scope: AsgiScope) -> str:
    """The client's dialect as a metrics label and for the answer's headers, from the path alone (bounded:
    one of a few names)."""
    path: str = scope["path"]
    if path.startswith("/v1/messages"):
        return "anthropic"
    if path.startswith(("/v1/chat/completions", "/chat/completions")):
        return "openai"
    if path.startswith("/v1/responses"):
        return "responses"
    if path.startswith(("/v1beta/", "/v1/models/")) and ":" in path:
        return "gemini"
    if path.startswith("/admin"):
        return "admin"
    if path.startswith("/v1/"):
        for name, _ in scope["headers"]:
            if name == b"anthropic-version":
                return "anthropic"
        return "openai"
    return "other"


class _Watched:
    """The server's ``send``, noting the response status (and adding Anthropic's ``request-id`` header)."""

    __slots__ = ("_extra", "_send", "status")

    def __init__(self, send: Send, extra: tuple[bytes, bytes] | None) -> None:
        self._send = send
        self._extra = extra
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            if self._extra is not None:
                message["headers"] = [*message.get("headers", ()), self._extra]
        await self._send(message)


class RequestScope:
    """Pure ASGI: opens the REQUEST scope, answers with ``x-request-id``, and closes the scope (running the
    request's closers) when the response has been sent or the client is gone; then writes the request's
    access log line and reports its status.

    The request's notes (``REQUEST_NOTES``: id, dialect, the finished chat request) are set for the whole
    request, so every log line carries the id and the pipeline can leave what the access line needs."""

    def __init__(self, app: ASGIApp, root: Callable[[], AsyncContainer | None]) -> None:
        self._app = app
        self._root = root
        self._ids: IdGenerator | None = None
        self._objects: tuple[Clock, Telemetry] | None = None

    def _new_id(self) -> str:
        assert self._ids is not None
        return self._ids.new_id("req_")

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        root = self._root()
        if root is None:
            await _unavailable(send)
            return
        objects = self._objects
        if objects is None:
            self._ids = await root.get(IdGenerator)
            objects = self._objects = (await root.get(Clock), await root.get(Telemetry))
        clock, telemetry = objects
        started = clock.monotonic()
        request_id = request_id_of(scope, self._new_id)
        encoded = request_id.encode()
        header = (b"x-request-id", encoded)
        dialect = dialect_of_path(scope)
        notes = RequestNotes(request_id, dialect)
        token = REQUEST_NOTES.set(notes)
        watched = _Watched(send, (b"request-id", encoded) if dialect == "anthropic" else None)
        disconnected = False
        try:
            exchange = Exchange(scope, receive)
            lifetime = RequestLifetime(receive, client_gone_of(scope))
            try:
                context = {Exchange: exchange, RequestId: request_id, RequestLifetime: lifetime}
                async with root(context=context) as container:
                    scope[CONTAINER] = container
                    scope[ROOT] = root
                    try:
                        await self._app(scope, lifetime.receive, CoalescingSend(watched, header, lifetime))
                    except asyncio.CancelledError:
                        if not lifetime.disconnected:
                            raise
                        task = asyncio.current_task()
                        if task is not None:
                            task.uncancel()
                    finally:
                        disconnected = lifetime.disconnected
                        # The container's context holds the Exchange, which holds ``scope`` (and ``scope`` the
                        # container): without this, every request left a reference cycle for the garbage
                        # collector.
                        exchange.end()
            finally:
                await lifetime.close()  # after the REQUEST scope's own closing, as when dishka closed it last
        finally:
            try:
                # nginx's convention for a client gone before any answer
                status = watched.status or (CLIENT_CLOSED if disconnected else 0)
                telemetry.response_sent(dialect, status)
                if access_log.isEnabledFor(logging.INFO):
                    fields = access_fields(scope, notes, status, clock.monotonic() - started, disconnected)
                    # PERF: a record made directly skips logging's stack walk for the caller (unused here).
                    record = access_log.makeRecord(
                        access_log.name,
                        logging.INFO,
                        __name__,
                        0,
                        "%s %s %d",
                        (scope["method"], scope["path"], status),
                        None,
                        extra={"access": fields},
                    )
                    access_log.handle(record)
            except Exception:
                log.exception("reporting a finished request failed")
            finally:
                REQUEST_NOTES.reset(token)


def access_fields(
    scope: AsgiScope, notes: RequestNotes, status: int, duration: float, disconnected: bool
) -> dict[str, Any]:
    """The access log line's fields: who asked what, where it went, and how it ended (never a key)."""
    fields: dict[str, Any] = {
        "request_id": notes.request_id,
        "method": scope["method"],
        "path": scope["path"],
        "dialect": notes.dialect,
        "status": status,
        "duration_ms": round(duration * 1000, 3),
        "client_disconnected": disconnected,
    }
    finished = notes.finished
    if finished is not None:
        fields.update(_chat_fields(finished))
    return fields


def _chat_fields(finished: FinishedRequest) -> dict[str, Any]:
    usage = finished.usage
    return {
        "key_id": finished.key_id,
        "plan": finished.plan,
        "model": finished.requested_model,
        "provider": finished.provider,
        "upstream_model": finished.model,
        "account": finished.account,
        "outcome": finished.status.value,
        "attempts": [
            {"model": a.model, "account": a.account, "outcome": a.outcome.value, "reason": a.reason}
            for a in finished.attempts
        ],
        "ttft_ms": round(finished.ttft * 1000, 3) if finished.ttft is not None else None,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_input_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


async def _unavailable(send: Send) -> None:
    body = b'{"error":{"type":"unavailable","message":"The gateway is starting."}}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": body})


T = TypeVar("T")


def inject(responder: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Resolve a responder's ``FromDishka[...]`` parameters from the request's container."""
    return wrap_injection(func=responder, is_async=True, container_getter=_container_of)


class AppObjects:
    """The APP-scoped objects a chat resource uses on every request, resolved once per container.

    PERF: they live as long as the process, so a container lookup per request and object is wasted work on
    the hot path (the REQUEST-scoped objects are still injected per request)."""

    __slots__ = ("_cached", "_root")

    def __init__(self) -> None:
        self._root: object = None
        self._cached: tuple[Gateway, Clock] | None = None

    async def of(self, req: falcon.asgi.Request) -> tuple[Gateway, Clock]:
        root = req.scope.get(ROOT)
        if self._cached is None or root is not self._root:
            container = container_of(req)
            self._cached = (await container.get(Gateway), await container.get(Clock))
            self._root = root
        return self._cached


def container_of(req: falcon.asgi.Request) -> AsyncContainer:
    """The request's container, for a responder that resolves what it needs itself."""
    container = req.scope.get(CONTAINER)
    if container is None:
        raise StorageError("The gateway is not started.")
    return container  # type: ignore[no-any-return]


def _container_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> AsyncContainer:
    """Responders are methods: ``(self, req, resp, ...)``."""
    return container_of(args[1])
