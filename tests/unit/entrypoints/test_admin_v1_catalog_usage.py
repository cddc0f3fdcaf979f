"""Admin API v1: catalog items over HTTP (masked secrets, references checked, 409 on referenced deletes),
usage rows, summaries and CSV, live state, and the dashboard session standing in for the secret."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta

import attrs
import httpx
import pytest

from apipod.domain.catalog import Account, Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.limits import account_cooldown
from apipod.domain.usage import Attempt
from apipod.entrypoints.http.admin_session import AdminSessions
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from tests.contracts.builders import make_record
from tests.unit.application.fakes import World, make_world
from tests.unit.entrypoints.admin_v1_support import ADMIN, admin_client

SECRET_A = "sk-live-abcdefghijklmnop9f2c"
CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI, accounts=(Account(0, SECRET_A), Account(1, "short"))),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="gpt-x"),),
    plans=(Plan(name="basic", routes=(Route("m"),)),),
)


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG, HttpRequestProvider())


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(world) as http:
        yield http


async def test_providers_show_masked_hints_and_a_count_never_the_secret(client: httpx.AsyncClient) -> None:
    listed = await client.get("/admin/providers", headers=ADMIN)
    one = await client.get("/admin/providers/u", headers=ADMIN)

    assert one.json()["accounts"] == 2
    assert one.json()["account_hints"] == ["sk-...9f2c", "..."]
    assert listed.json()["data"] == [one.json()]
    assert SECRET_A not in listed.text
    assert SECRET_A not in (await client.get("/admin/catalog", headers=ADMIN)).text


async def test_a_provider_put_without_accounts_keeps_the_stored_ones(client: httpx.AsyncClient, world: World) -> None:
    kept = await client.put(
        "/admin/providers/u", headers=ADMIN, json={"type": "openai", "base_url": "https://x.example/v1"}
    )
    assert kept.status_code == 200, kept.text
    assert kept.json()["accounts"] == 2
    upstream = (await world.gateway.catalog.snapshot()).upstreams[0]
    assert upstream.base_url == "https://x.example/v1"
    assert upstream.accounts[0].secret == SECRET_A

    replaced = await client.put(
        "/admin/providers/u", headers=ADMIN, json={"type": "openai", "api_keys": ["sk-new-0123456789"]}
    )
    assert replaced.json()["account_hints"] == ["sk-...6789"]


async def test_items_are_read_one_by_one_and_unknown_ones_are_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/models/m", headers=ADMIN)).json()["upstream_model"] == "gpt-x"
    assert (await client.get("/admin/plans/basic", headers=ADMIN)).json()["name"] == "basic"
    assert [m["name"] for m in (await client.get("/admin/models", headers=ADMIN)).json()["data"]] == ["m"]
    assert [p["name"] for p in (await client.get("/admin/plans", headers=ADMIN)).json()["data"]] == ["basic"]
    for path in ("/admin/providers/x", "/admin/models/x", "/admin/plans/x"):
        assert (await client.get(path, headers=ADMIN)).status_code == 404
        assert (await client.delete(path, headers=ADMIN)).status_code == 404


async def test_a_referenced_item_is_not_deleted_and_the_409_names_who_uses_it(
    client: httpx.AsyncClient, world: World
) -> None:
    model = await client.delete("/admin/models/m", headers=ADMIN)
    provider = await client.delete("/admin/providers/u", headers=ADMIN)

    assert model.status_code == 409
    assert "'basic'" in model.json()["error"]["message"]
    assert provider.status_code == 409
    assert "'m'" in provider.json()["error"]["message"]
    assert await world.gateway.catalog.snapshot() == CATALOG


async def test_deletes_in_dependency_order_succeed(client: httpx.AsyncClient, world: World) -> None:
    for path in ("/admin/plans/basic", "/admin/models/m", "/admin/providers/u"):
        answer = await client.delete(path, headers=ADMIN)
        assert answer.status_code == 204, (path, answer.text)
    catalog = await world.gateway.catalog.snapshot()
    assert (catalog.upstreams, catalog.models, catalog.plans) == ((), (), ())


async def test_a_model_naming_an_unknown_provider_is_refused_before_storing(
    client: httpx.AsyncClient, world: World
) -> None:
    answer = await client.put("/admin/models/n", headers=ADMIN, json={"provider": "ghost"})

    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "provider"
    assert await world.gateway.catalog.snapshot() == CATALOG


async def record_rows(world: World) -> None:
    now = world.clock.now()
    await world.usage.record(make_record("req_1", key_id="k1", timestamp=now - timedelta(hours=2)))
    await world.usage.record(
        make_record("req_2", key_id="k2", timestamp=now - timedelta(hours=1), status="upstream_unavailable")
    )
    await world.usage.record(make_record("req_3", key_id="k1", timestamp=now, requested_model="=cmd()"))


async def test_usage_rows_filter_and_page(client: httpx.AsyncClient, world: World) -> None:
    await record_rows(world)

    everything = await client.get("/admin/usage", headers=ADMIN)
    first = await client.get("/admin/usage?limit=2", headers=ADMIN)
    rest = await client.get(f"/admin/usage?limit=2&cursor={first.json()['next_cursor']}", headers=ADMIN)
    failed = await client.get("/admin/usage?status=upstream_unavailable", headers=ADMIN)
    k1 = await client.get("/admin/usage?key_id=k1&since=2026-11-28T11:00:00Z", headers=ADMIN)

    assert [r["request_id"] for r in everything.json()["data"]] == ["req_3", "req_2", "req_1"]
    assert [r["request_id"] for r in first.json()["data"] + rest.json()["data"]] == ["req_3", "req_2", "req_1"]
    assert rest.json()["next_cursor"] is None
    assert [r["request_id"] for r in failed.json()["data"]] == ["req_2"]
    assert [r["request_id"] for r in k1.json()["data"]] == ["req_3"]
    bad = await client.get("/admin/usage?status=fine", headers=ADMIN)
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "status"


async def test_usage_summary_groups_per_bucket(client: httpx.AsyncClient, world: World) -> None:
    await record_rows(world)

    answer = await client.get("/admin/usage/summary?group_by=key&bucket=day", headers=ADMIN)

    assert answer.status_code == 200, answer.text
    rows = {r["group"]: r for r in answer.json()["data"]}
    assert rows["k1"]["requests"] == 2
    assert rows["k2"]["errors"] == 1
    assert answer.json()["currency"] == "USD"


async def test_csv_exports_rows_and_summaries_and_defuses_formulas(client: httpx.AsyncClient, world: World) -> None:
    await record_rows(world)

    rows = await client.get("/admin/usage.csv?key_id=k1", headers=ADMIN)
    summary = await client.get("/admin/usage/summary.csv?group_by=model", headers=ADMIN)

    assert rows.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(rows.text)))
    assert [r["request_id"] for r in table] == ["req_3", "req_1"]
    assert table[0]["requested_model"] == "'=cmd()"
    assert {r["group"] for r in csv.DictReader(io.StringIO(summary.text))} == {"pro", "'=cmd()"}


async def test_state_shows_health_cooldowns_and_recent_error_rates(client: httpx.AsyncClient, world: World) -> None:
    await world.limits.cool_down(account_cooldown("u", 1), 30)
    failed = Attempt(model="m", account="u/#0", outcome="failed", reason="UpstreamServerError")
    served = Attempt(model="m", account="u/#0", outcome="served")
    record = make_record("req_x", timestamp=world.clock.now(), attempts=(failed, served))
    await world.usage.record(record)

    answer = await client.get("/admin/state", headers=ADMIN)

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["queue_depth"] == 0
    assert body["usage_backlog"] == 0
    accounts = body["models"][0]["accounts"]
    assert accounts[0]["health"] == "healthy"
    assert accounts[0]["error_rate"] == 0.5
    assert accounts[1]["health"] == "cooling_down"
    assert accounts[1]["until"] is not None


@attrs.define
class FakeSessions:
    calls: list[tuple[str | None, str | None, str]] = attrs.field(factory=list)

    def check(self, cookie: str | None, csrf: str | None, *, method: str, now: float) -> bool:
        self.calls.append((cookie, csrf, method))
        return cookie == "good" and (method in ("GET", "HEAD") or csrf == "token")


async def test_a_dashboard_session_stands_in_for_the_secret(world: World) -> None:
    sessions = FakeSessions()
    async with admin_client(world, sessions=sessions) as http:
        http.cookies.set("apipod_admin", "good")
        read = await http.get("/admin/keys")
        no_csrf = await http.post("/admin/create-key", json={"name": "a", "tier": "basic"})
        with_csrf = await http.post(
            "/admin/create-key", json={"name": "a", "tier": "basic"}, headers={"x-csrf-token": "token"}
        )
        http.cookies.set("apipod_admin", "forged")
        forged = await http.get("/admin/keys")
        wrong_secret = await http.get("/admin/keys", headers={"x-admin-secret": "nope"})

    assert read.status_code == 200
    assert no_csrf.status_code == 403
    assert with_csrf.status_code == 201
    assert forged.status_code == 403
    assert wrong_secret.status_code == 403  # a wrong secret header decides; the cookie is not consulted
    assert len(sessions.calls) == 4


async def test_without_sessions_a_cookie_is_not_enough(client: httpx.AsyncClient) -> None:
    client.cookies.set("apipod_admin", "good")

    assert (await client.get("/admin/keys")).status_code == 403


async def test_the_dashboards_real_sessions_plug_in_and_expire_on_the_injected_clock(world: World) -> None:

    sessions = AdminSessions("s" * 24, ttl_seconds=60)
    cookie, csrf = sessions.issue(world.clock.now().timestamp())
    async with admin_client(world, sessions=sessions) as http:
        http.cookies.set("apipod_admin", cookie)
        read = await http.get("/admin/keys")
        write = await http.post(
            "/admin/create-key", json={"name": "a", "tier": "basic"}, headers={"x-csrf-token": csrf}
        )
        world.clock.advance(61)
        expired = await http.get("/admin/keys")

    assert (read.status_code, write.status_code, expired.status_code) == (200, 201, 403)


async def test_a_stale_session_is_refused_without_throttling_the_address(world: World) -> None:
    async with admin_client(world, sessions=FakeSessions()) as http:
        http.cookies.set("apipod_admin", "stale")
        refused = [(await http.get("/admin/keys")).status_code for _ in range(10)]
        http.cookies.clear()
        with_secret = await http.get("/admin/keys", headers=ADMIN)

    assert refused == [403] * 10
    assert with_secret.status_code == 200
