"""Admin input that used to break things: each is a 400 naming the offending field, nothing is stored, and
the reads that follow still answer 200."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from tests.unit.application.fakes import World, make_world

SECRET = "s" * 24
ADMIN = {"x-admin-secret": SECRET}
CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="gpt-x"),),
    plans=(Plan(name="basic", routes=(Route("m"),)),),
)


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG, HttpRequestProvider())


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=10_000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://apipod") as http:
        yield http


def assert_invalid(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request"
    assert error["field"] == field


async def assert_catalog_unchanged(client: httpx.AsyncClient, world: World) -> None:
    answer = await client.get("/admin/catalog", headers=ADMIN)
    assert answer.status_code == 200
    assert await world.gateway.catalog.snapshot() == CATALOG


PLAN = {"routes": [{"model": "m"}]}


@pytest.mark.parametrize(
    ("kind", "name", "body", "field"),
    [
        (
            "plans",
            "p",
            {**PLAN, "budgets": [{"window": "day", "tokens": 9}, {"window": "0h", "tokens": 1}]},
            "budgets[1].window",
        ),
        ("plans", "p", {**PLAN, "budgets": [{"window": 0, "tokens": 1}]}, "budgets[0].window"),
        ("plans", "p", {**PLAN, "budgets": [{"window": {"hours": -3}, "tokens": 1}]}, "budgets[0].window"),
        ("plans", "p", {**PLAN, "budgets": [{"window": "100000h", "tokens": 1}]}, "budgets[0].window"),
        ("plans", "p", {**PLAN, "budgets": {"window": "day", "tokens": 1}}, "budgets"),
        ("plans", "p", {**PLAN, "aliases": {"fast": PLAN}}, "aliases"),
        ("plans", "p", {**PLAN, "aliases": [["fast"]]}, "aliases[0]"),
        ("plans", "p", {**PLAN, "aliases": [{"name": "fast", "routes": "m"}]}, "aliases[0].routes"),
        ("plans", "p", {"routes": [{"model": "m", "weight": -1}]}, "routes[0].weight"),
        ("plans", "p", {"routes": [{"model": "m", "weight": 1e12}]}, "routes[0].weight"),
        ("plans", "p", {"routes": [{"model": "ghost"}]}, "routes[0].model"),
        ("plans", "p", {"routes": []}, "routes"),
        ("plans", "p%01q", PLAN, "name"),
        ("plans", "p", {**PLAN, "rpm": 0}, "rpm"),
        ("providers", "x", {"type": "openai", "timeout": {"read": "30"}}, "timeout.read"),
        ("providers", "x", {"type": "openai", "base_url": "https://user:pass@api.example/v1"}, "base_url"),
        ("providers", "x", {"type": "openai", "base_url": "api.example/v1"}, "base_url"),
        ("providers", "x", {"type": "openai", "base_url": "https://"}, "base_url"),
        ("providers", "x", {"type": "antigravity", "projects": {"0": "p"}}, "projects"),
        ("providers", "x", {"type": "openai", "api_keys": [1]}, "api_keys[0]"),
        ("providers", "x", {"type": "openai", "headers": ["x-a"]}, "headers"),
        ("providers", "x", {"type": "openai", "max_response_bytes": "16MiB"}, "max_response_bytes"),
        ("providers", "x", {"type": "nope"}, "type"),
        ("models", "mm", {"provider": "ghost"}, "provider"),
        ("models", "mm", {"provider": "u", "rpm": -5}, "rpm"),
        ("models", "mm", {"provider": "u", "upstream_model": ["a"]}, "upstream_model"),
    ],
)
async def test_bad_catalog_tables_are_refused_before_anything_is_stored(
    client: httpx.AsyncClient, world: World, kind: str, name: str, body: dict[str, Any], field: str
) -> None:
    answer = await client.put(f"/admin/{kind}/{name}", headers=ADMIN, json=body)
    assert_invalid(answer, field)
    await assert_catalog_unchanged(client, world)


async def test_a_provider_takes_the_upstream_bounds(client: httpx.AsyncClient, world: World) -> None:
    body = {
        "type": "openai",
        "api_keys": ["sk-1"],
        "timeout": {"connect": 2, "read": 30, "first_event": 15, "total": 90},
        "max_event_bytes": 1024,
        "max_response_bytes": 4096,
    }
    answer = await client.put("/admin/providers/x", headers=ADMIN, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "name": "x",
        "type": "openai",
        "base_url": "https://api.openai.com/v1",
        "accounts": 1,
        "account_hints": ["..."],
        "headers": [],
        "timeout": {"connect": 2.0, "read": 30.0, "first_event": 15.0, "total": 90.0},
        "max_event_bytes": 1024,
        "max_response_bytes": 4096,
    }
    stored = next(u for u in (await world.gateway.catalog.snapshot()).upstreams if u.name == "x")
    assert (stored.timeouts.first_event, stored.timeouts.total) == (15.0, 90.0)
    assert (stored.max_event_bytes, stored.max_response_bytes) == (1024, 4096)


async def test_a_good_plan_answers_its_table(client: httpx.AsyncClient) -> None:
    body = {**PLAN, "budgets": [{"window": {"hours": 5}, "tokens": 10}]}
    answer = await client.put("/admin/plans/p", headers=ADMIN, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["budgets"] == [{"window": "5h", "tokens": 10, "requests": None, "cost": None}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "tier": "basic", "expires_at": "9999-12-31T23:59:59-12:00"}, "expires_at"),
        ({"name": "x", "tier": "basic", "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "tier": "basic", "expires_in": 1e12}, "expires_in"),
        ({"name": "x", "tier": "basic", "expires_in": -1}, "expires_in"),
        ({"name": "x", "tier": "basic", "expires_in": True}, "expires_in"),
        ({"name": "x", "tier": "basic", "expires_in": "soon"}, "expires_in"),
        ({"name": "a\u0000b", "tier": "basic"}, "name"),
        ({"name": "   ", "tier": "basic"}, "name"),
        ({"name": 7, "tier": "basic"}, "name"),
        ({"name": "x", "tier": {"plan": "basic"}}, "tier"),
        ({"name": "x", "tier": "gold"}, "tier"),  # unknown plan: the use case's own check
    ],
)
async def test_bad_key_requests_store_no_key(
    client: httpx.AsyncClient, world: World, body: dict[str, Any], field: str
) -> None:
    answer = await client.post("/admin/create-key", headers=ADMIN, json=body)
    assert_invalid(answer, field)
    listed = await client.get("/admin/keys", headers=ADMIN)
    assert listed.status_code == 200
    assert listed.json() == {"data": [], "next_cursor": None}


async def test_non_finite_numbers_are_not_json(client: httpx.AsyncClient) -> None:
    content = b'{"name": "x", "tier": "basic", "expires_in": NaN}'
    answer = await client.post(
        "/admin/create-key", headers={**ADMIN, "content-type": "application/json"}, content=content
    )
    assert answer.status_code == 400
    assert (await client.get("/admin/keys", headers=ADMIN)).json() == {"data": [], "next_cursor": None}


async def test_an_expiry_at_the_end_of_time_lists_fine(client: httpx.AsyncClient) -> None:
    body = {"name": "x", "tier": "basic", "expires_at": "9999-12-31T23:59:59+14:00"}
    answer = await client.post("/admin/create-key", headers=ADMIN, json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["expires_at"] == "9999-12-31T09:59:59Z"
    listed = await client.get("/admin/keys", headers=ADMIN)
    assert listed.status_code == 200
    assert [k["expires_at"] for k in listed.json()["data"]] == ["9999-12-31T09:59:59Z"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=2026-11-28T00:00:00", "since"),
        ("since=noon", "since"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("limit=0", "limit"),
    ],
)
async def test_bad_usage_queries_name_the_parameter(client: httpx.AsyncClient, query: str, field: str) -> None:
    assert_invalid(await client.get(f"/admin/usage?{query}", headers=ADMIN), field)


@pytest.mark.parametrize("limit", ["5", "99999999999999999999"])
async def test_a_good_usage_query_answers(client: httpx.AsyncClient, limit: str) -> None:
    answer = await client.get(f"/admin/usage?since=2026-11-28T00:00:00Z&limit={limit}", headers=ADMIN)
    assert answer.status_code == 200
    assert answer.json() == {"data": [], "next_cursor": None}


async def test_errors_without_a_field_keep_the_old_shape(client: httpx.AsyncClient) -> None:
    answer = await client.put("/admin/plans/p", headers={**ADMIN, "content-type": "application/json"}, content=b"[")
    assert answer.status_code == 400
    assert set(answer.json()["error"]) == {"type", "message"}
