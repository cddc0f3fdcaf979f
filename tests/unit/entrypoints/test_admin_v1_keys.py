"""Admin API v1, keys: filters and pages, get, change, revoke/reactivate, rotation with and without a grace
period (the key cache included), and a key's usage and budgets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.errors import AuthenticationError
from apipod.domain.quota import Budget, Window, WindowUnit
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from tests.contracts.builders import make_record
from tests.unit.application.fakes import World, make_world
from tests.unit.entrypoints.admin_v1_support import ADMIN, admin_client

CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="gpt-x"),),
    plans=(
        Plan(name="basic", routes=(Route("m"),), budgets=(Budget(window=Window(WindowUnit.DAY), tokens=1000),)),
        Plan(name="pro", routes=(Route("m"),)),
    ),
)


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG, HttpRequestProvider())


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(world) as http:
        yield http


async def create(client: httpx.AsyncClient, name: str, tier: str = "basic") -> dict[str, str]:
    answer = await client.post("/admin/create-key", headers=ADMIN, json={"name": name, "tier": tier})
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_the_list_filters_by_plan_status_and_name(client: httpx.AsyncClient) -> None:
    alice, bob, _ = (await create(client, "alice"), await create(client, "bob", "pro"), await create(client, "carol"))
    await client.post(f"/admin/keys/{alice['id']}/revoke", headers=ADMIN)

    async def names(query: str) -> list[str]:
        answer = await client.get(f"/admin/keys?{query}", headers=ADMIN)
        assert answer.status_code == 200, answer.text
        return [k["name"] for k in answer.json()["data"]]

    assert await names("") == ["alice", "bob", "carol"]
    assert await names("plan=pro") == ["bob"]
    assert await names("status=revoked") == ["alice"]
    assert await names("status=active") == ["bob", "carol"]
    assert await names("q=AR") == ["carol"]
    assert bob["id"]


async def test_the_list_pages_with_an_opaque_cursor(client: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c", "d", "e"):
        await create(client, name)

    seen: list[str] = []
    url = "/admin/keys?limit=2"
    while True:
        page = (await client.get(url, headers=ADMIN)).json()
        seen += [k["name"] for k in page["data"]]
        if page["next_cursor"] is None:
            break
        url = f"/admin/keys?limit=2&cursor={page['next_cursor']}"

    assert seen == ["a", "b", "c", "d", "e"]
    bad = await client.get("/admin/keys?cursor=nonsense", headers=ADMIN)
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "cursor"


async def test_the_expired_status_follows_the_clock(client: httpx.AsyncClient, world: World) -> None:
    await client.post("/admin/create-key", headers=ADMIN, json={"name": "soon", "tier": "basic", "expires_in": 1})
    world.clock.advance(2 * 86_400)

    answer = await client.get("/admin/keys?status=expired", headers=ADMIN)

    assert [k["name"] for k in answer.json()["data"]] == ["soon"]
    assert answer.json()["data"][0]["status"] == "expired"


async def test_get_and_patch_change_only_the_fields_given(client: httpx.AsyncClient, world: World) -> None:
    key = await create(client, "alice")
    later = (world.clock.now() + timedelta(days=3)).isoformat()

    patched = await client.patch(f"/admin/keys/{key['id']}", headers=ADMIN, json={"tier": "pro", "expires_at": later})
    assert patched.status_code == 200, patched.text
    assert patched.json()["tier"] == "pro"
    assert patched.json()["name"] == "alice"
    assert patched.json()["expires_at"] is not None

    never = await client.patch(f"/admin/keys/{key['id']}", headers=ADMIN, json={"expires_at": None, "name": "Al"})
    assert never.json()["expires_at"] is None
    assert never.json()["name"] == "Al"
    got = await client.get(f"/admin/keys/{key['id']}", headers=ADMIN)
    assert got.json() == never.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tier": "ghost"}, "tier"),
        ({"tier": None}, "tier"),
        ({"active": "yes"}, "active"),
        ({"expires_at": "2000-01-01T00:00:00Z"}, "expires_at"),
        ({"nickname": "x"}, "nickname"),
    ],
)
async def test_a_bad_patch_is_a_400_naming_the_field_and_changes_nothing(
    client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    key = await create(client, "alice")

    answer = await client.patch(f"/admin/keys/{key['id']}", headers=ADMIN, json=body)

    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["field"] == field
    assert (await client.get(f"/admin/keys/{key['id']}", headers=ADMIN)).json()["tier"] == "basic"


async def test_unknown_keys_answer_404(client: httpx.AsyncClient) -> None:
    for method, path in (
        ("GET", "/admin/keys/nope"),
        ("PATCH", "/admin/keys/nope"),
        ("POST", "/admin/keys/nope/rotate"),
        ("POST", "/admin/keys/nope/reactivate"),
        ("GET", "/admin/keys/nope/budgets"),
        ("GET", "/admin/keys/nope/usage"),
    ):
        answer = await client.request(method, path, headers=ADMIN, json={} if method == "PATCH" else None)
        assert answer.status_code == 404, (method, path, answer.text)


async def test_revoke_then_reactivate_reaches_authentication_at_once(client: httpx.AsyncClient, world: World) -> None:
    key = await create(client, "alice")
    await world.gateway.authenticate(key["api_key"])  # cached now

    await client.post(f"/admin/keys/{key['id']}/revoke", headers=ADMIN)
    with pytest.raises(Exception, match="revoked"):
        await world.gateway.authenticate(key["api_key"])
    reactivated = await client.post(f"/admin/keys/{key['id']}/reactivate", headers=ADMIN)

    assert reactivated.json()["active"] is True
    assert (await world.gateway.authenticate(key["api_key"])).key.id == key["id"]


async def test_rotation_without_grace_stops_the_old_secret_at_once(client: httpx.AsyncClient, world: World) -> None:
    key = await create(client, "alice")
    await world.gateway.authenticate(key["api_key"])

    rotated = await client.post(f"/admin/keys/{key['id']}/rotate", headers=ADMIN)

    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["id"] == key["id"]
    assert rotated.json()["api_key"] != key["api_key"]
    with pytest.raises(AuthenticationError):
        await world.gateway.authenticate(key["api_key"])
    assert (await world.gateway.authenticate(rotated.json()["api_key"])).key.id == key["id"]


async def test_rotation_with_grace_keeps_the_old_secret_until_it_ends(client: httpx.AsyncClient, world: World) -> None:
    key = await create(client, "alice")

    rotated = await client.post(f"/admin/keys/{key['id']}/rotate", headers=ADMIN, json={"grace_seconds": 60})

    assert rotated.json()["previous_secret_valid_until"] is not None
    assert (await world.gateway.authenticate(key["api_key"])).key.id == key["id"]  # cached from here on
    world.clock.advance(59)
    assert (await world.gateway.authenticate(key["api_key"])).key.id == key["id"]
    world.clock.advance(2)
    with pytest.raises(AuthenticationError):
        await world.gateway.authenticate(key["api_key"])
    assert (await world.gateway.authenticate(rotated.json()["api_key"])).key.id == key["id"]


async def test_a_bad_grace_period_is_a_400(client: httpx.AsyncClient) -> None:
    key = await create(client, "alice")

    for grace in (-1, "soon", 10**9):
        answer = await client.post(f"/admin/keys/{key['id']}/rotate", headers=ADMIN, json={"grace_seconds": grace})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["field"] == "grace_seconds"


async def test_budgets_show_limit_used_remaining_and_reset(client: httpx.AsyncClient, world: World) -> None:
    key = await create(client, "alice")

    answer = await client.get(f"/admin/keys/{key['id']}/budgets", headers=ADMIN)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["plan"] == "basic"
    assert body["data"] == [
        {
            "window": "day",
            "unit": "tokens",
            "limit": 1000,
            "used": 0,
            "remaining": 1000,
            "resets_at": "2026-11-29T00:00:00Z",
        }
    ]


async def test_a_keys_usage_is_its_rows_only(client: httpx.AsyncClient, world: World) -> None:
    key = await create(client, "alice")
    await world.usage.record(make_record("req_a", key_id=key["id"], timestamp=world.clock.now()))
    await world.usage.record(make_record("req_b", key_id="key_other", timestamp=world.clock.now()))

    answer = await client.get(f"/admin/keys/{key['id']}/usage", headers=ADMIN)

    assert answer.status_code == 200, answer.text
    assert [r["request_id"] for r in answer.json()["data"]] == ["req_a"]
