"""A refused or failed request is freed by reference counting, like a served one.

A serving process raises the collector's young threshold to 30,000 objects (``entrypoints/http/collector.py``),
which is safe only while requests leave no reference cycle: garbage in a cycle waits for a collection, and a
failed request's cycle holds its request and body. A frame that raises an exception kept in one of its own
variables makes such a cycle (the traceback holds the frame, the frame holds the exception); these are the
paths that did, each a common answer under load: an upstream's error status, a spent budget, no capacity, and
a client gone while holds were released. (A refused connection still leaves cycles, inside asyncio's and
aiohttp's connection code: they wait for a collection, as any garbage past the threshold does.)"""

from __future__ import annotations

import asyncio
import gc
import types
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from apipod.adapters.sqlite import SqliteDatabase, SqliteQuotaLedger
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.application.holds import run_each
from apipod.application.settings import GovernanceSettings
from apipod.application.wait_queue import Busy, WaitQueue
from apipod.domain.catalog import UpstreamKind
from apipod.domain.errors import NoCapacityError, QuotaExceededError, UpstreamRateLimitedError
from apipod.domain.quota import Budget
from tests.contracts.builders import DAY, NOW
from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_openai import FakeOpenAI
from tests.unit.adapters.upstreams.conftest import KEY, make_call, user_request


@contextmanager
def no_cycle_left() -> Iterator[None]:
    """Fails if what ran inside left a frame of apipod's in a reference cycle (collector off meanwhile)."""
    gc.collect()
    gc.disable()
    try:
        yield
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            frames = [
                f"{item.f_code.co_name} ({item.f_code.co_filename.rsplit('/src/', 1)[-1]})"
                for item in gc.garbage
                if isinstance(item, types.FrameType) and "/src/apipod/" in item.f_code.co_filename
            ]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
        assert frames == [], "\n".join(frames)
    finally:
        gc.enable()


async def test_an_upstream_error_status() -> None:
    fake = FakeOpenAI(keys=[KEY])
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        upstream = OpenAIUpstream(http)
        call = make_call(UpstreamKind.OPENAI, "http://fake/v1")
        with no_cycle_left():
            for _ in range(3):
                fake.reply_error(429, "slow down", kind="rate_limit_error")
                with pytest.raises(UpstreamRateLimitedError):
                    await upstream.complete(call, user_request())
                fake.reply_error(429, "slow down", kind="rate_limit_error")
                with pytest.raises(UpstreamRateLimitedError):
                    await upstream.stream(call, user_request()).__anext__()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    db = SqliteDatabase(tmp_path / "apipod.db")
    await db.migrate()
    yield db
    await db.close()


async def test_a_spent_budget(database: SqliteDatabase) -> None:
    ledger = SqliteQuotaLedger(database)
    budgets = (Budget(window=DAY, requests=1),)
    await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=60)
    with no_cycle_left():
        for _ in range(3):
            with pytest.raises(QuotaExceededError):
                await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1, now=NOW, ttl=60)


async def test_no_capacity_with_and_without_waiting() -> None:
    async def busy() -> None:
        raise Busy(None, NoCapacityError("Every upstream model for this request is at its limit.", retry_after=None))

    full = WaitQueue(GovernanceSettings(max_queue=0))
    waiting = WaitQueue(GovernanceSettings(max_queue=10, queue_wait_seconds=0.01))
    with no_cycle_left():
        for queue in (full, waiting, full, waiting):
            with pytest.raises(NoCapacityError):
                await queue.run(busy, queue.deadline())


async def test_holds_released_while_the_client_is_gone() -> None:
    async def cancelled() -> None:
        raise asyncio.CancelledError

    async def released() -> None:
        return None

    steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [("a", cancelled), ("b", released)]
    with no_cycle_left():
        for _ in range(3):
            with pytest.raises(asyncio.CancelledError):
                await run_each(steps)
