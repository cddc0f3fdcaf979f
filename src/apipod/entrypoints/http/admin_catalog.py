"""Admin operations on the catalog: providers (with their accounts), upstream models and plans. Everything
is checked (fields, then references) before anything is stored; a DELETE of something still referenced is
a 409 naming who references it. Nothing here caches: every read asks the store's snapshot, which follows
other processes' changes within a second."""

from __future__ import annotations

from typing import Any

import attrs

from apipod.dialects.catalog_wire import WireError, model_view, plan_view, upstream_view
from apipod.dialects.catalog_wire.tables import ModelTable, ProviderTable
from apipod.domain.catalog import Catalog, Plan, Upstream, find_model, find_plan, find_upstream
from apipod.domain.errors import ConflictError, NotFoundError
from apipod.entrypoints.http.admin import check_model_references, check_plan_references, invalid
from apipod.entrypoints.http.admin_api import AdminCall, Answer

ACCOUNT_LISTS = ("api_keys", "github_tokens", "refresh_tokens")


def catalog_view(catalog: Catalog) -> dict[str, Any]:
    return {
        "providers": [upstream_view(u) for u in catalog.upstreams],
        "models": [model_view(m) for m in catalog.models],
        "plans": [plan_view(p) for p in catalog.plans],
        "currency": catalog.currency,
    }


async def get_catalog(call: AdminCall) -> Answer:
    return Answer(catalog_view(await call.gateway.catalog.snapshot()))


async def list_providers(call: AdminCall) -> Answer:
    return Answer({"data": [upstream_view(u) for u in (await call.gateway.catalog.snapshot()).upstreams]})


async def list_models(call: AdminCall) -> Answer:
    return Answer({"data": [model_view(m) for m in (await call.gateway.catalog.snapshot()).models]})


async def list_plans(call: AdminCall) -> Answer:
    return Answer({"data": [plan_view(p) for p in (await call.gateway.catalog.snapshot()).plans]})


def _missing(kind: str, name: str) -> NotFoundError:
    return NotFoundError(f"No {kind} named '{name}'.")


async def get_provider(call: AdminCall) -> Answer:
    name = call.params["name"]
    upstream = find_upstream(await call.gateway.catalog.snapshot(), name)
    if upstream is None:
        raise _missing("provider", name)
    return Answer(upstream_view(upstream))


async def get_model(call: AdminCall) -> Answer:
    name = call.params["name"]
    model = find_model(await call.gateway.catalog.snapshot(), name)
    if model is None:
        raise _missing("model", name)
    return Answer(model_view(model))


async def get_plan(call: AdminCall) -> Answer:
    name = call.params["name"]
    plan = find_plan(await call.gateway.catalog.snapshot(), name)
    if plan is None:
        raise _missing("plan", name)
    return Answer(plan_view(plan))


def _keep_accounts(upstream: Upstream, given: frozenset[str], stored: Upstream | None) -> Upstream:
    """Secrets are write-only, so a client that read a provider cannot send its accounts back: a PUT without
    an account list keeps the stored accounts (of the same type)."""
    if stored is None or stored.kind != upstream.kind or any(k in given for k in ACCOUNT_LISTS):
        return upstream
    return attrs.evolve(upstream, accounts=stored.accounts)


async def put_provider(call: AdminCall) -> Answer:
    table: ProviderTable = call.body
    upstream = table.to_upstream()
    known = await call.gateway.catalog.snapshot()
    upstream = _keep_accounts(upstream, call.given, find_upstream(known, upstream.name))
    await call.gateway.catalog.upsert_upstream(upstream)
    return Answer(upstream_view(upstream))


async def put_model(call: AdminCall) -> Answer:
    table: ModelTable = call.body
    model = table.to_model()
    try:
        check_model_references(model, await call.gateway.catalog.snapshot())
    except WireError as exc:
        raise invalid(exc) from None
    await call.gateway.catalog.upsert_model(model)
    return Answer(model_view(model))


async def put_plan(call: AdminCall) -> Answer:
    plan: Plan = call.body
    try:
        check_plan_references(plan, await call.gateway.catalog.snapshot())
    except WireError as exc:
        raise invalid(exc) from None
    await call.gateway.catalog.upsert_plan(plan)
    return Answer(plan_view(plan))


def _names(what: str, names: list[str]) -> str:
    shown = ", ".join(f"'{n}'" for n in sorted(set(names))[:10])
    return f"{what} {shown}" + (" and more" if len(set(names)) > 10 else "")


async def delete_provider(call: AdminCall) -> Answer:
    name = call.params["name"]
    known = await call.gateway.catalog.snapshot()
    if find_upstream(known, name) is None:
        raise _missing("provider", name)
    users = [m.name for m in known.models if m.upstream == name]
    if users:
        raise ConflictError(f"Provider '{name}' is still used by {_names('model(s)', users)}.")
    await call.gateway.catalog.delete_upstream(name)
    return Answer(None, 204)


async def delete_model(call: AdminCall) -> Answer:
    name = call.params["name"]
    known = await call.gateway.catalog.snapshot()
    if find_model(known, name) is None:
        raise _missing("model", name)
    users = [
        p.name
        for p in known.plans
        if any(r.model == name for r in p.routes) or any(r.model == name for a in p.aliases for r in a.routes)
    ]
    if users:
        raise ConflictError(f"Model '{name}' is still routed to by {_names('plan(s)', users)}.")
    await call.gateway.catalog.delete_model(name)
    return Answer(None, 204)


async def delete_plan(call: AdminCall) -> Answer:
    """Keys on the plan stay; they answer 403 until moved to another plan."""
    name = call.params["name"]
    if find_plan(await call.gateway.catalog.snapshot(), name) is None:
        raise _missing("plan", name)
    await call.gateway.catalog.delete_plan(name)
    return Answer(None, 204)


async def provider_models(call: AdminCall) -> Answer:
    name = call.params["name"]
    return Answer({"provider": name, "data": await call.gateway.upstream_models(name)})
