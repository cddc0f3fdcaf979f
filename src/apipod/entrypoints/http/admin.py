"""The admin API: keys, the catalog (providers, models, plans) and usage, behind ``x-admin-secret``."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import falcon
import falcon.asgi
import orjson

from apipod.application.gateway import Gateway
from apipod.application.ports import Clock
from apipod.bootstrap.catalog_file import check_references, parse_model, parse_plan, parse_upstream
from apipod.bootstrap.settings import ConfigError
from apipod.domain.catalog import Catalog, Plan, Upstream, UpstreamModel
from apipod.domain.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from apipod.domain.keys import ApiKey
from apipod.domain.usage import UsageRecord
from apipod.entrypoints.http.errors import ADMIN
from apipod.entrypoints.http.request_body import read_json_object
from apipod.entrypoints.http.request_scope import container_of


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def key_view(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "tier": key.plan,
        "active": key.active,
        "created_at": _iso(key.created_at),
        "expires_at": _iso(key.expires_at),
        "last_used_at": _iso(key.last_used_at),
    }


def upstream_view(upstream: Upstream) -> dict[str, Any]:
    """Never the secrets: how many accounts the pool has is enough to manage it."""
    return {
        "name": upstream.name,
        "type": upstream.kind.value,
        "base_url": upstream.base_url,
        "accounts": len(upstream.accounts),
        "headers": sorted(upstream.headers),
    }


def model_view(model: UpstreamModel) -> dict[str, Any]:
    limits = model.limits
    return {
        "name": model.name,
        "provider": model.upstream,
        "upstream_model": model.upstream_model,
        "rpm": limits.rpm,
        "tpm": limits.tpm,
        "rpd": limits.rpd,
        "max_concurrency": limits.max_concurrency,
    }


def plan_view(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "routes": [{"model": r.model, "weight": r.weight} for r in plan.routes],
        "aliases": [
            {"name": a.name, "routes": [{"model": r.model, "weight": r.weight} for r in a.routes]} for a in plan.aliases
        ],
        "budgets": [{"window": b.window.name, "tokens": b.tokens, "requests": b.requests} for b in plan.budgets],
        "strict_models": plan.strict_models,
        "rpm": plan.rpm,
        "max_concurrency": plan.max_concurrency,
    }


def usage_view(row: UsageRecord) -> dict[str, Any]:
    u = row.usage
    return {
        "request_id": row.request_id,
        "key_id": row.key_id,
        "user": row.user,
        "requested_model": row.requested_model,
        "routed_model": row.routed_model,
        "upstream_provider": row.upstream,
        "status": row.status,
        "token_count": u.total_tokens,
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "latency_ms": round(row.latency_ms, 3),
        "ttft_ms": round(row.ttft_ms, 3) if row.ttft_ms is not None else None,
        "error": row.error,
        "attempts": [{"model": a.model, "account": a.account, "outcome": a.summary} for a in row.attempts],
        "timestamp": _iso(row.timestamp),
    }


def _expiry(body: dict[str, Any], now: datetime) -> datetime | None:
    expires_in = body.get("expires_in")
    expires_at = body.get("expires_at")
    if expires_in is not None:
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
            raise InvalidRequestError("'expires_in' is a positive number of days.", param="expires_in")
        return now + timedelta(days=float(expires_in))
    if expires_at is not None:
        if not isinstance(expires_at, str):
            raise InvalidRequestError("'expires_at' is an RFC 3339 timestamp.", param="expires_at")
        try:
            parsed = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidRequestError("'expires_at' is an RFC 3339 timestamp.", param="expires_at") from None
        if parsed.tzinfo is None:
            raise InvalidRequestError("'expires_at' needs a time zone offset.", param="expires_at")
        return parsed
    return None


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

    def _check(self, req: falcon.asgi.Request) -> None:
        given = (req.get_header("x-admin-secret") or "").encode()
        if not hmac.compare_digest(given, self._admin_secret.encode()):
            raise PermissionDeniedError("Invalid admin secret.")

    @staticmethod
    def _json(resp: falcon.asgi.Response, body: object, status: int = 200) -> None:
        resp.status = status
        resp.content_type = falcon.MEDIA_JSON
        resp.data = orjson.dumps(body)


class CreateKey(AdminResource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        self._check(req)
        gateway, clock = await self._engine(req)
        body = await read_json_object(req, self._max_body_bytes)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError("'name' is required.", param="name")
        plan = body.get("tier") or body.get("sub_name") or body.get("plan")
        if not isinstance(plan, str) or not plan:
            raise InvalidRequestError("'tier' (the plan's name) is required.", param="tier")
        issued = await gateway.issue_key(name=name, plan=plan, expires_at=_expiry(body, clock.now()))
        key = issued.key
        self._json(
            resp,
            {
                "id": key.id,
                "api_key": issued.plaintext,
                "name": key.name,
                "tier": key.plan,
                "created_at": _iso(key.created_at),
                "expires_at": _iso(key.expires_at),
            },
            201,
        )


class Keys(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        self._check(req)
        gateway = await self._gateway(req)
        self._json(resp, {"data": [key_view(k) for k in await gateway.list_keys()]})


class RevokeKey(AdminResource):
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response, key_id: str) -> None:
        self._check(req)
        gateway = await self._gateway(req)
        self._json(resp, key_view(await gateway.revoke_key(key_id)))


class CatalogResource(AdminResource):
    """GET the catalog; PUT one provider, model or plan (the TOML table's fields, as JSON)."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        self._check(req)
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
        self._check(req)
        gateway = await self._gateway(req)
        body = await read_json_object(req, self._max_body_bytes)
        body["name"] = name
        known = await gateway.catalog.snapshot()
        try:
            if kind == "providers":
                upstream = parse_upstream(body, "provider")
                await gateway.catalog.upsert_upstream(upstream)
                self._json(resp, upstream_view(upstream))
            elif kind == "models":
                model = parse_model(body, "model")
                check_references(Catalog(models=(model,)), known)
                await gateway.catalog.upsert_model(model)
                self._json(resp, model_view(model))
            elif kind == "plans":
                plan = parse_plan(body, "plan")
                check_references(Catalog(plans=(plan,)), known)
                await gateway.catalog.upsert_plan(plan)
                self._json(resp, plan_view(plan))
            else:
                raise NotFoundError(f"No catalog section '{kind}'.")
        except ConfigError as exc:
            raise InvalidRequestError(str(exc)) from None


class Usage(AdminResource):
    """Usage rows, newest first: ``?key_id=``, ``?since=`` (RFC 3339), ``?limit=`` (default 100)."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        self._check(req)
        gateway = await self._gateway(req)
        since_raw = req.get_param("since")
        try:
            since = datetime.fromisoformat(since_raw.replace("Z", "+00:00")) if since_raw else None
            limit = int(req.get_param("limit") or 100)
        except ValueError:
            raise InvalidRequestError("'since' is RFC 3339 and 'limit' a whole number.") from None
        rows = await gateway.usage_log.query(key_id=req.get_param("key_id"), since=since, limit=min(limit, 10_000))
        self._json(resp, {"data": [usage_view(r) for r in rows]})
