"""Retries must work on every tenacity release ``pyproject.toml`` allows (issue 9, finding 9).

tenacity 9.0 and 9.1 reject ``wait_exponential_jitter(multiplier=...)`` with a TypeError that escaped as a 500
(no failover) and killed the PostgreSQL usage writer's first batch. These tests drive the real tenacity
machinery (the CI job with the lowest allowed versions runs them on tenacity 9.0).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import tenacity

from apipod.adapters.postgres.usage import PgUsageLog
from apipod.adapters.retry import ExponentialJitter, RetryPolicy
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.application.ports import UpstreamClient, UpstreamRegistry
from apipod.domain.catalog import Upstream
from apipod.domain.chat import Usage
from apipod.domain.errors import StorageError
from apipod.domain.usage import UsageRecord
from tests.unit.application.catalogs import two_upstreams
from tests.unit.application.fakes import ScriptedUpstream, make_world, text_result, user_request


def state(attempt_number: int) -> tenacity.RetryCallState:
    retry_state = tenacity.RetryCallState(tenacity.AsyncRetrying(), fn=None, args=(), kwargs={})
    retry_state.attempt_number = attempt_number
    return retry_state


def test_backoff_doubles_from_initial_adds_jitter_and_is_capped() -> None:
    no_jitter = ExponentialJitter(0.1, 1.0, 0.1, rand=lambda low, high: low)
    assert [no_jitter(state(n)) for n in (1, 2, 3, 4, 5)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0])
    full_jitter = ExponentialJitter(0.1, 1.0, 0.1, rand=lambda low, high: high)
    assert full_jitter(state(1)) == pytest.approx(0.2)
    assert no_jitter(state(100_000)) == 1.0  # no OverflowError after a very long outage


def test_backoff_is_accepted_by_tenacity_as_a_wait() -> None:
    retrying = tenacity.Retrying(wait=ExponentialJitter(0.0, 0.0, 0.0), stop=tenacity.stop_after_attempt(3))
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("refused")
        return "ok"

    assert retrying(flaky) == "ok"
    assert len(calls) == 3


async def test_retry_policy_builds_its_wait_on_this_tenacity() -> None:
    attempts = []

    async def refused() -> str:
        attempts.append(1)
        raise ConnectionRefusedError

    policy = RetryPolicy(attempts=3, wait_initial=0.0, wait_max=0.0)
    with pytest.raises(ConnectionRefusedError):
        await policy.call(refused, retry_on=(ConnectionRefusedError,))
    assert len(attempts) == 3


class ByUpstream(UpstreamRegistry):
    """up1 is the real OpenAI adapter facing an address that refuses connections; up2 is scripted."""

    def __init__(self, refused: list[httpx.Request], scripted: ScriptedUpstream) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            refused.append(request)
            raise httpx.ConnectError("connection refused", request=request)

        client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
        self.refusing = OpenAIUpstream(client, retry=RetryPolicy(attempts=2, wait_initial=0.0, wait_max=0.0))
        self.scripted = scripted

    def client_for(self, upstream: Upstream) -> UpstreamClient:
        return self.refusing if upstream.name == "up1" else self.scripted


async def test_a_refused_connection_fails_over_to_the_next_model() -> None:
    refused: list[httpx.Request] = []
    scripted = ScriptedUpstream()
    scripted.script("b", text_result("from b"))
    world = await make_world(two_upstreams(), registry=ByUpstream(refused, scripted), max_attempts=3)
    gateway = world.gateway
    key = (await gateway.issue_key(name="alice", plan="pro")).plaintext
    result = await gateway.complete(key, user_request())  # routed to "a" first (weight 1000 to 1)
    assert result.text() == "from b"
    assert len(refused) >= 2  # the connection was retried on "a", then the dispatcher failed over
    assert [seen.call.model.name for seen in scripted.calls] == ["b"]


class FlakyDatabase:
    """Stands in for PgDatabase: the first ``failures`` connections fail like a database that is down."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.executed = 0

    @contextlib.asynccontextmanager
    async def connection(self, action: str = "database call") -> AsyncIterator[FlakyDatabase]:
        if self.failures > 0:
            self.failures -= 1
            raise StorageError(f"{action}: connection refused")
        yield self

    async def copy_records_to_table(self, table: str, *, records: list[Any], columns: Any) -> str:
        self.executed += 1
        return f"COPY {len(records)}"


async def test_usage_writer_retries_its_batch_while_the_database_is_down() -> None:
    db = FlakyDatabase(failures=2)
    usage_log = PgUsageLog(db, retry_initial=0.0, retry_max=0.0)  # type: ignore[arg-type]
    await usage_log.record(
        UsageRecord(
            request_id="req-1",
            key_id="key-1",
            user="alice",
            requested_model="demo",
            routed_model="a",
            upstream="up1/#0",
            status="success",
            usage=Usage(input_tokens=3, output_tokens=2),
            latency_ms=1.0,
            timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        )
    )
    await usage_log.close(grace=5.0)
    assert usage_log.written == 1
    assert db.executed == 1
