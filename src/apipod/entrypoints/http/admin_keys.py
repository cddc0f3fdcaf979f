"""Admin operations on API keys: list (filters, pages), create, get, change, revoke, reactivate, rotate, and
one key's usage and remaining budgets."""

from __future__ import annotations

from typing import Any

from apipod.application.key_standing import BudgetStanding
from apipod.application.manage_keys import UNSET, KeyChange, KeyFilter
from apipod.dialects.catalog_wire import CreateKeyBody, WireError, converter, issued_key_view, key_view
from apipod.dialects.catalog_wire.admin_queries import (
    KeyListQuery,
    PageQuery,
    PatchKeyBody,
    RotateKeyBody,
    decode_cursor,
    encode_cursor,
)
from apipod.dialects.catalog_wire.views import money, rotated_key_view
from apipod.domain.usage import UsageFilter
from apipod.entrypoints.http.admin import invalid
from apipod.entrypoints.http.admin_api import AdminCall, Answer
from apipod.entrypoints.http.admin_usage import usage_page


async def list_keys(call: AdminCall) -> Answer:
    query: KeyListQuery = call.query
    where = KeyFilter(
        plan=query.plan,
        status=query.status,
        name_contains=query.q or None,
    )
    after = None
    if query.cursor is not None:
        data = decode_cursor(query.cursor)
        after = data.get("after")
        if not isinstance(after, str):
            raise invalid(WireError("cursor", "is not a cursor this API gave out"))
    limit = query.limit if query.limit is not None else (100 if query.cursor is not None else 1_000_000)
    page = await call.gateway.page_keys(where, limit=limit, after=after)
    now = call.clock.now()
    cursor = None if page.next_after is None else encode_cursor({"after": page.next_after})
    return Answer({"data": [key_view(k, now) for k in page.keys], "next_cursor": cursor})


async def create_key(call: AdminCall) -> Answer:
    wanted: CreateKeyBody = call.body
    try:
        plan = wanted.plan_name()
    except WireError as exc:
        raise invalid(exc) from None
    issued = await call.gateway.issue_key(name=wanted.name, plan=plan, expires_at=wanted.expiry(call.clock.now()))
    return Answer(issued_key_view(issued.key, issued.plaintext), 201)


async def get_key(call: AdminCall) -> Answer:
    return Answer(key_view(await call.gateway.get_key(call.params["key_id"]), call.clock.now()))


async def change_key(call: AdminCall) -> Answer:
    body: PatchKeyBody = call.body
    for field in ("name", "tier", "active"):
        if field in call.given and getattr(body, field) is None:
            raise invalid(WireError(field, "must not be null"))
    change = KeyChange(
        name=body.name if body.name is not None else UNSET,
        plan=body.tier if body.tier is not None else UNSET,
        expires_at=body.expires_at if "expires_at" in call.given else UNSET,
        active=body.active if body.active is not None else UNSET,
    )
    return Answer(key_view(await call.gateway.change_key(call.params["key_id"], change), call.clock.now()))


async def revoke_key(call: AdminCall) -> Answer:
    return Answer(key_view(await call.gateway.revoke_key(call.params["key_id"]), call.clock.now()))


async def reactivate_key(call: AdminCall) -> Answer:
    return Answer(key_view(await call.gateway.reactivate_key(call.params["key_id"]), call.clock.now()))


async def rotate_key(call: AdminCall) -> Answer:
    body: RotateKeyBody = call.body
    issued = await call.gateway.rotate_key(call.params["key_id"], grace_seconds=body.grace_seconds)
    return Answer(rotated_key_view(issued.key, issued.plaintext))


async def key_usage(call: AdminCall) -> Answer:
    key = await call.gateway.get_key(call.params["key_id"])
    query: PageQuery = call.query
    return Answer(await usage_page(call.gateway, UsageFilter(key_id=key.id), limit=query.limit, cursor=query.cursor))


def budget_view(standing: BudgetStanding) -> dict[str, Any]:
    return {
        "window": standing.window,
        "unit": standing.unit,
        "limit": money(standing.limit),
        "used": money(standing.used),
        "remaining": money(standing.remaining),
        "resets_at": converter.unstructure(standing.resets_at),
    }


async def key_budgets(call: AdminCall) -> Answer:
    key = await call.gateway.get_key(call.params["key_id"])
    standings = await call.gateway.key_budgets(key.id)
    catalog = await call.gateway.catalog.snapshot()
    return Answer(
        {
            "key_id": key.id,
            "plan": key.plan,
            "currency": catalog.currency,
            "data": [budget_view(s) for s in standings],
        }
    )
