"""Failed admin authentication is throttled per client address and logged (issue 9, finding 7)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from apipod.entrypoints.http.admin_guard import AdminGuard
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from tests.unit.application.fakes import World, make_world
from tests.unit.entrypoints.test_http_app import CATALOG, SECRET

WRONG = "w" * 24


def test_five_failures_are_free_then_each_doubles_the_pause_up_to_the_cap() -> None:
    guard = AdminGuard(free_failures=5, base_delay=1.0, max_delay=30.0)
    now = 100.0
    for _ in range(5):
        assert guard.refused_for("10.0.0.1", now) is None
        guard.failed("10.0.0.1", now, path="/admin/keys")
    assert guard.refused_for("10.0.0.1", now) is None
    pauses = []
    for _ in range(8):
        guard.failed("10.0.0.1", now, path="/admin/keys")
        pauses.append(guard.refused_for("10.0.0.1", now))
        now += pauses[-1] or 0.0  # wait out the pause, then fail again
    assert pauses == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert guard.refused_for("10.0.0.2", now) is None  # other addresses are not affected


def test_success_clears_the_address() -> None:
    guard = AdminGuard(free_failures=1)
    guard.failed("a", 0.0, path="/admin/keys")
    guard.failed("a", 0.0, path="/admin/keys")
    assert guard.refused_for("a", 0.5) == pytest.approx(0.5)
    guard.succeeded("a")
    assert guard.refused_for("a", 0.5) is None
    assert len(guard) == 0


def test_the_table_is_bounded_and_forgets_quiet_addresses() -> None:
    guard = AdminGuard(max_entries=100, forget_after=60.0)
    for i in range(1_000):
        guard.failed(f"10.0.{i // 256}.{i % 256}", float(i) / 100, path="/admin/keys")
    assert len(guard) == 100
    guard.failed("late", 10_000.0, path="/admin/keys")
    assert len(guard) == 1  # everything else was quiet for longer than forget_after


def test_a_long_quiet_address_starts_afresh() -> None:
    guard = AdminGuard(free_failures=1, forget_after=60.0)
    guard.failed("a", 0.0, path="/admin/keys")
    guard.failed("a", 0.0, path="/admin/keys")
    assert guard.refused_for("a", 0.0) is not None
    guard.failed("a", 1_000.0, path="/admin/keys")
    assert guard.refused_for("a", 1_000.0) is None


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG, HttpRequestProvider())


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=10_000)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://apipod") as http:
        yield http


async def test_guessing_is_refused_with_429_without_checking_the_secret(
    client: httpx.AsyncClient, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="apipod.admin")
    statuses = [(await client.get("/admin/keys", headers={"x-admin-secret": WRONG})).status_code for _ in range(300)]
    assert statuses[:6] == [403] * 6
    assert set(statuses[6:]) == {429}
    # Refused at once even with the right secret while the pause lasts: the secret is not compared.
    refused = await client.get("/admin/keys", headers={"x-admin-secret": SECRET})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "rate_limited"
    world.clock.advance(1.0)
    assert (await client.get("/admin/keys", headers={"x-admin-secret": SECRET})).status_code == 200
    assert (await client.get("/admin/keys", headers={"x-admin-secret": WRONG})).status_code == 403  # reset

    failures = [r for r in caplog.records if r.name == "apipod.admin" and r.levelno == logging.WARNING]
    assert len(failures) == 7  # each failure that reached the secret check, none of the refused ones
    for record in failures:
        message = record.getMessage()
        assert "203.0.113.9" in message
        assert "/admin/keys" in message
        assert WRONG not in message
        assert WRONG[:8] not in message
