"""The admin API: keys, the catalog (providers, models, plans) and usage, behind ``x-admin-secret``."""

from __future__ import annotations

import hmac

import falcon
import falcon.asgi
import orjson

from apipod.application.gateway import Gateway
from apipod.application.ports import Clock
from apipod.dialects.catalog_wire import (
    WireError,
    create_key_body,
    issued_key_view,
    key_view,
    model_from_table,
    model_view,
    plan_from_table,
    plan_view,
    upstream_from_table,
    upstream_view,
    usage_query,
    usage_view,
)
from apipod.domain.catalog import Catalog, Plan, UpstreamModel
from apipod.domain.errors import InvalidRequestError, NotFoundError, PermissionDeniedError, RateLimitedError
from apipod.entrypoints.http.admin_guard import AdminGuard
from apipod.entrypoints.http.errors import ADMIN
from apipod.entrypoints.http.request_body import read_json_object
from apipod.entrypoints.http.request_scope import container_of


def invalid(error: WireError) -> InvalidRequestError:
    """The admin error: the message says what is wrong, ``param`` is the path of the offending value."""
    message = f"{error.field}: {error.reason}" if error.field else error.reason
    return InvalidRequestError(message, param=error.field or None)


def _check_model_references(model: UpstreamModel, known: Catalog) -> None:
    if model.upstream not in {u.name for u in known.upstreams}:
        raise WireError("provider", f"names unknown provider '{model.upstream}'")


def _check_plan_references(plan: Plan, known: Catalog) -> None:
    models = {m.name for m in known.models}
    for i, route in enumerate(plan.routes):
        if route.model not in models:
            raise WireError(f"routes[{i}].model", f"names unknown model '{route.model}'")
    for a, alias in enumerate(plan.aliases):
        for i, route in enumerate(alias.routes):
            if route.model not in models:
                raise WireError(f"aliases[{a}].routes[{i}].model", f"names unknown model '{route.model}'")


class AdminResource:
    dialect = ADMIN

    def __init__(self, *, admin_secret: str, max_body_bytes: int) -> None:
        self._admin_secret = admin_secret
        self._max_body_bytes = max_body_bytes

    @staticmethod
    async def _gateway(req: falcon.asgi.Request) -> Gateway:
        return await container_of(req).get(Gateway)

    @staticmethod
    async def _engine(req: falcon.asgi.Request) -> tuple[Gateway, Clock]:
        container = container_of(req)
        return await container.get(Gateway), await container.get(Clock)

    async def _check(self, req: falcon.asgi.Request) -> None:
        # A throttled address is refused before its secret is compared (admin_guard.py).
        container = container_of(req)
        guard, address = await container.get(AdminGuard), req.remote_addr
        now = (await container.get(Clock)).monotonic()
        wait = guard.refused_for(address, now)
        if wait is not None:
            raise RateLimitedError("Too many failed admin authentications; try again later.", retry_after=wait)
        given = (req.get_header("x-admin-secret") or "").encode()
        if not hmac.compare_digest(given, self._admin_secret.encode()):
            guard.failed(address, now, path=req.path)
            raise PermissionDeniedError("Invalid admin secret.")
        guard.succeeded(address)

    @staticmethod
    def _json(resp: falcon.asgi.Response, body: object, status: int = 200) -> None:
        resp.status = status
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(body)


class CreateKey(AdminResource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self._check(req)
        gateway, clock = await self._engine(req)
        body = await read_json_object(req, self._max_body_bytes)
        try:
            wanted = create_key_body(body)
            plan = wanted.plan_name()
        except WireError as exc:
            raise invalid(exc) from None
        issued = await gateway.issue_key(name=wanted.name, plan=plan, expires_at=wanted.expiry(clock.now()))
        self._json(resp, issued_key_view(issued.key, issued.plaintext), 201)


class Keys(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self._check(req)
        gateway = await self._gateway(req)
        self._json(resp, {"data": [key_view(k) for k in await gateway.list_keys()]})


class RevokeKey(AdminResource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key_id: str) -> None:
        await self._check(req)
        gateway = await self._gateway(req)
        self._json(resp, key_view(await gateway.revoke_key(key_id)))


class CatalogResource(AdminResource):
    """GET the catalog; PUT one provider, model or plan (the TOML table's fields, as JSON)."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self._check(req)
        gateway = await self._gateway(req)
        catalog = await gateway.catalog.snapshot()
        self._json(
            resp,
            {
                "providers": [upstream_view(u) for u in catalog.upstreams],
                "models": [model_view(m) for m in catalog.models],
                "plans": [plan_view(p) for p in catalog.plans],
            },
        )

    async def on_put_item(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, kind: str, name: str) -> None:
        """The body is the TOML table as JSON; the path names it. Everything is checked before anything is
        stored, and a mistake answers 400 with the path of the offending value."""
        await self._check(req)
        gateway = await self._gateway(req)
        if kind not in ("providers", "models", "plans"):
            raise NotFoundError(f"No catalog section '{kind}'.")
        body = await read_json_object(req, self._max_body_bytes)
        body["name"] = name
        known = await gateway.catalog.snapshot()
        try:
            if kind == "providers":
                upstream = upstream_from_table(body)
                await gateway.catalog.upsert_upstream(upstream)
                self._json(resp, upstream_view(upstream))
            elif kind == "models":
                model = model_from_table(body)
                _check_model_references(model, known)
                await gateway.catalog.upsert_model(model)
                self._json(resp, model_view(model))
            else:
                plan = plan_from_table(body)
                _check_plan_references(plan, known)
                await gateway.catalog.upsert_plan(plan)
                self._json(resp, plan_view(plan))
        except WireError as exc:
            raise invalid(exc) from None


class Usage(AdminResource):
    """Usage rows, newest first: ``?key_id=``, ``?since=`` (RFC 3339 with an offset), ``?limit=`` (default
    100; at most 10000 rows are answered)."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        await self._check(req)
        gateway = await self._gateway(req)
        params = {k: req.get_param(k) for k in ("key_id", "since", "limit")}
        try:
            query = usage_query({k: v for k, v in params.items() if v is not None})
        except WireError as exc:
            raise invalid(exc) from None
        rows = await gateway.usage_log.query(key_id=query.key_id, since=query.since, limit=query.limit)
        self._json(resp, {"data": [usage_view(r) for r in rows]})


class ProviderModels(AdminResource):
    """``GET /admin/providers/{name}/models``: the model ids the provider itself offers, for writing
    ``upstream_model`` in the catalog. An upstream that cannot be asked answers in the admin error shape."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str) -> None:
        await self._check(req)
        gateway = await self._gateway(req)
        self._json(resp, {"provider": name, "data": await gateway.upstream_models(name)})
