"""/health/ready over the app: ready, draining, store unavailable, and "starting" before start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from apipod.application.ports.health import StoreProbe
from apipod.bootstrap.settings import Settings
from apipod.domain.errors import StorageError
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.asgi import StartingReadiness
from apipod.entrypoints.http.request_scope import HttpRequestProvider
from apipod.entrypoints.http.serving import Serving, ServingProvider
from tests.unit.application.fakes import make_world
from tests.unit.entrypoints.test_http_app import CATALOG, SECRET


class Probe:
    def __init__(self) -> None:
        self.failure: str | None = None

    async def ping(self) -> None:
        if self.failure:
            raise StorageError(self.failure)


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, Serving, Probe]]:
    serving, probe = Serving(), Probe()
    world = await make_world(CATALOG, HttpRequestProvider(), ServingProvider(serving), replace={StoreProbe: probe})
    app = create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=10_000)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://apipod") as http:
        yield http, serving, probe


async def test_ready_then_unavailable_then_draining(setup: tuple[httpx.AsyncClient, Serving, Probe]) -> None:
    client, serving, probe = setup
    answer = await client.get("/health/ready")
    assert (answer.status_code, answer.json()) == (200, {"status": "ready"})
    probe.failure = "The database is down."
    answer = await client.get("/health/ready")
    assert (answer.status_code, answer.json()) == (503, {"status": "unavailable", "reason": "The database is down."})
    probe.failure = None
    serving.begin_draining()
    answer = await client.get("/health/ready")
    assert answer.status_code == 503
    assert answer.json() == {"status": "draining", "reason": "The gateway is shutting down."}
    assert (await client.get("/health")).status_code == 200


async def test_before_start_up_readiness_answers_starting() -> None:
    app = StartingReadiness(create_app(lambda: None, admin_secret=SECRET, max_body_bytes=10_000), lambda: False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://apipod") as client:
        answer = await client.get("/health/ready")
        assert (answer.status_code, answer.json()) == (
            503,
            {"status": "starting", "reason": "The gateway is starting."},
        )
        assert (await client.get("/health")).status_code == 503  # the app's own "starting" answer


def test_stream_and_shutdown_settings() -> None:
    from apipod.bootstrap.settings import ConfigError, load_settings

    assert Settings().sse_keepalive_seconds == 15 and Settings().shutdown_grace_seconds == 30
    settings = load_settings(
        {
            "SSE_KEEPALIVE_SECONDS": "0.2",
            "STREAM_FLUSH_INTERVAL_MS": "25",
            "SHUTDOWN_DRAIN_SECONDS": "0",
            "SHUTDOWN_GRACE_SECONDS": "2.5",
        }
    )
    assert settings.sse_keepalive_seconds == 0.2
    assert settings.stream_flush_interval_ms == 25
    assert settings.shutdown_drain_seconds == 0
    assert settings.shutdown_grace_seconds == 2.5
    with pytest.raises(ConfigError, match="SHUTDOWN_GRACE_SECONDS"):
        load_settings({"SHUTDOWN_GRACE_SECONDS": "-1"})
