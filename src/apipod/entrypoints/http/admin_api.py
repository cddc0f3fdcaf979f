"""How an admin operation is declared once and served: ``Operation`` names its method, path, summary, body
and query classes (structured by the catalog_wire converter) and answers; ``resources`` turns a list of them
into Falcon resources that authenticate, read and validate input, call the handler and write its answer.
``openapi.py`` builds the published document from the same list."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import attrs
import falcon
import falcon.asgi
import orjson

from apipod.application.gateway import Gateway
from apipod.application.ports import Clock
from apipod.dialects.catalog_wire import WireError, read
from apipod.dialects.catalog_wire.admin_queries import query_of
from apipod.entrypoints.http.admin import invalid
from apipod.entrypoints.http.admin_auth import SessionCheck, check_admin
from apipod.entrypoints.http.errors import ADMIN
from apipod.entrypoints.http.request_body import read_json_object
from apipod.entrypoints.http.request_scope import container_of


@attrs.frozen(kw_only=True)
class AdminCall:
    """One admin request, read and validated: ``body`` and ``query`` are instances of the operation's classes
    (None when it declares none); ``given`` is the set of body fields present (a PATCH needs it)."""

    req: falcon.asgi.Request
    gateway: Gateway
    clock: Clock
    params: Mapping[str, str]
    body: Any = None
    query: Any = None
    given: frozenset[str] = frozenset()


@attrs.frozen
class Answer:
    """A JSON answer, or a text stream (CSV) when ``stream`` is set."""

    body: Any = None
    status: int = 200
    stream: AsyncIterator[bytes] | None = None
    content_type: str = falcon.MEDIA_JSON
    filename: str | None = None


Handler = Callable[[AdminCall], Awaitable[Answer]]


@attrs.frozen(kw_only=True)
class Operation:
    """``answers``: status → component schema name (``answer_schemas.COMPONENTS``), or None for a body that is
    not JSON (``content_type``). ``body_schema``: the body's schema when its class is not described by the
    generator; ``public``: served without the admin secret."""

    method: str
    path: str
    summary: str
    handler: Handler
    tag: str
    answers: Mapping[int, str | None]
    body: type | None = None
    body_optional: bool = False
    body_schema: Mapping[str, Any] | None = None
    path_fields: tuple[str, ...] = ()  # body fields the path gives (a catalog item's ``name``)
    query: type | None = None
    description: str = ""
    content_type: str = falcon.MEDIA_JSON
    public: bool = False

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")


class _AdminPath:
    dialect = ADMIN

    def __init__(
        self,
        operations: Mapping[str, Operation],
        *,
        admin_secret: str,
        max_body_bytes: int,
        sessions: SessionCheck | None,
    ) -> None:
        self._operations = operations
        self._secret = admin_secret
        self._max_body_bytes = max_body_bytes
        self._sessions = sessions

    async def _serve(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, **params: str) -> None:
        operation = self._operations[req.method]
        container = container_of(req)
        if not operation.public:
            await check_admin(req, container, self._secret, self._sessions)
        call = await self._call(req, operation, params, await container.get(Gateway), await container.get(Clock))
        try:
            answer = await operation.handler(call)
        except WireError as exc:  # input a handler found wrong (a cursor, a reference)
            raise invalid(exc) from None
        resp.status = answer.status
        resp.content_type = answer.content_type
        resp.set_header("cache-control", "no-store")
        if answer.filename:
            resp.set_header("content-disposition", f'attachment; filename="{answer.filename}"')
        if answer.stream is not None:
            resp.stream = answer.stream
        elif answer.body is not None:
            resp.data = orjson.dumps(answer.body)

    async def _call(
        self, req: falcon.asgi.Request, operation: Operation, params: dict[str, str], gateway: Gateway, clock: Clock
    ) -> AdminCall:
        body: Any = None
        given: frozenset[str] = frozenset()
        try:
            query = None if operation.query is None else query_of(_query_params(req), operation.query)
            if operation.body is not None or operation.body_schema is not None:
                raw = await self._raw_body(req, optional=operation.body_optional)
                given = frozenset(raw)
                raw.update({name: params[name] for name in operation.path_fields})
                body = raw if operation.body is None else read(raw, operation.body)
        except WireError as exc:
            raise invalid(exc) from None
        return AdminCall(req=req, gateway=gateway, clock=clock, params=params, body=body, query=query, given=given)

    async def _raw_body(self, req: falcon.asgi.Request, *, optional: bool) -> dict[str, Any]:
        if optional and not req.content_length and req.get_header("transfer-encoding") is None:
            return {}
        return await read_json_object(req, self._max_body_bytes)


def _query_params(req: falcon.asgi.Request) -> dict[str, str]:
    """The last value of each parameter (a repeated one is not a list here)."""
    return {name: value[-1] if isinstance(value, list) else value for name, value in req.params.items()}


def resources(
    operations: list[Operation], *, admin_secret: str, max_body_bytes: int, sessions: SessionCheck | None = None
) -> list[tuple[str, object]]:
    """One Falcon resource per path, with a responder for each declared method (others answer 405)."""
    by_path: dict[str, dict[str, Operation]] = {}
    for operation in operations:
        by_path.setdefault(operation.path, {})[operation.method.upper()] = operation
    routes: list[tuple[str, object]] = []
    for path, methods in by_path.items():
        responders = {f"on_{method.lower()}": _AdminPath._serve for method in methods}
        cls = type("AdminPath", (_AdminPath,), responders)
        routes.append((path, cls(methods, admin_secret=admin_secret, max_body_bytes=max_body_bytes, sessions=sessions)))
    return routes


class UnknownAdminPath:
    """A Falcon sink under ``/admin/`` for the paths no admin route has: the caller is checked first, so a
    caller without the secret learns nothing of which admin paths exist (403, counted by the throttle as any
    other failed attempt), and one with it gets the plain 404."""

    __slots__ = ("_secret", "_sessions")

    def __init__(self, *, admin_secret: str, sessions: SessionCheck | None = None) -> None:
        self._secret = admin_secret
        self._sessions = sessions

    async def __call__(self, req: falcon.asgi.Request, resp: falcon.asgi.Response | None, **_: Any) -> None:
        await check_admin(req, container_of(req), self._secret, self._sessions)
        raise falcon.HTTPNotFound()
