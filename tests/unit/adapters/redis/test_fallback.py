"""FallbackLimitStore: the shared store while it works, this process's store during an outage (one warning),
the shared store again after a successful probe (logged), and every lease released where it was taken."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from apipod.adapters.memory.limits import InMemoryLimitStore
from apipod.adapters.memory.system import FixedClock
from apipod.adapters.redis.fallback import FallbackLimitStore
from apipod.application.ports import LimitStore
from apipod.domain.errors import StorageError
from tests.contracts.limits import Advance, LimitStoreContract, limit_key

T = TypeVar("T")
PROBE = 5.0


class SwitchableStore(LimitStore):
    """An in-memory store standing in for Redis, that raises StorageError while ``down``; counts calls."""

    def __init__(self, clock: FixedClock) -> None:
        self.inner = InMemoryLimitStore(clock)
        self.down = False
        self.calls = 0

    async def _do(self, call: Callable[[], Awaitable[T]]) -> T:
        self.calls += 1
        if self.down:
            raise StorageError("counting a rate limit: Redis error (ConnectionError: refused)")
        return await call()

    async def hit(self, key: Any, *, limit: int, window: float, cost: int = 1) -> float | None:
        return await self._do(lambda: self.inner.hit(key, limit=limit, window=window, cost=cost))

    async def peek(self, key: Any, *, limit: int, window: float, cost: int = 1) -> float | None:
        return await self._do(lambda: self.inner.peek(key, limit=limit, window=window, cost=cost))

    async def acquire(self, key: Any, *, limit: int, lease: float) -> str | None:
        return await self._do(lambda: self.inner.acquire(key, limit=limit, lease=lease))

    async def release(self, key: Any, lease_id: str) -> None:
        await self._do(lambda: self.inner.release(key, lease_id))

    async def held(self, key: Any) -> int:
        return await self._do(lambda: self.inner.held(key))

    async def cool_down(self, key: Any, seconds: float) -> None:
        await self._do(lambda: self.inner.cool_down(key, seconds))

    async def cooling(self, key: Any) -> float:
        return await self._do(lambda: self.inner.cooling(key))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(monotonic=1000.0)


@pytest.fixture
def shared(clock: FixedClock) -> SwitchableStore:
    return SwitchableStore(clock)


@pytest.fixture
def local(clock: FixedClock) -> InMemoryLimitStore:
    return InMemoryLimitStore(clock)


@pytest.fixture
def fallback(shared: SwitchableStore, local: InMemoryLimitStore, clock: FixedClock) -> FallbackLimitStore:
    return FallbackLimitStore(shared, local, clock, probe_interval=PROBE)


class TestFallbackWhileSharedWorks(LimitStoreContract):
    """With a healthy shared store the wrapper is a LimitStore like any other."""

    @pytest.fixture
    def store(self, fallback: FallbackLimitStore) -> LimitStore:
        return fallback

    @pytest.fixture
    def advance(self, clock: FixedClock) -> Advance:
        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        return advance


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "apipod.limits" and r.levelno == logging.WARNING]


async def test_healthy_shared_store_is_used_and_local_stays_empty(
    fallback: FallbackLimitStore, shared: SwitchableStore, local: InMemoryLimitStore
) -> None:
    assert await fallback.hit(limit_key("k"), limit=1, window=60) is None

    assert await shared.inner.peek(limit_key("k"), limit=1, window=60) is not None  # counted in the shared store
    assert await local.peek(limit_key("k"), limit=1, window=60) is None
    assert not fallback.degraded


async def test_outage_goes_local_with_one_warning_and_limits_still_hold(
    fallback: FallbackLimitStore, shared: SwitchableStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "apipod.limits")
    shared.down = True

    results = [await fallback.hit(limit_key("k"), limit=2, window=60) for _ in range(3)]
    slots = [await fallback.acquire(limit_key("c"), limit=1, lease=30) for _ in range(2)]

    assert results[:2] == [None, None] and results[2] is not None  # the limit, enforced locally
    assert slots[0] is not None and slots[1] is None
    assert fallback.degraded and fallback.outages == 1
    [warning] = warnings(caplog)
    assert "this process only" in warning and "ConnectionError" in warning
    assert shared.calls == 1  # no retry of the shared store before the probe interval


async def test_no_probe_before_the_interval_then_back_after_a_successful_probe(
    fallback: FallbackLimitStore, shared: SwitchableStore, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "apipod.limits")
    shared.down = True
    await fallback.hit(limit_key("k"), limit=5, window=60)
    shared.down = False

    clock.advance(PROBE - 0.1)
    await fallback.hit(limit_key("k"), limit=5, window=60)
    assert (fallback.degraded, shared.calls) == (True, 1)

    clock.advance(0.2)
    assert await fallback.hit(limit_key("k"), limit=5, window=60) is None

    assert (fallback.degraded, shared.calls) == (False, 2)
    assert await shared.inner.peek(limit_key("k"), limit=1, window=60) is not None  # the probe counted in Redis
    assert len(warnings(caplog)) == 2 and "back" in warnings(caplog)[1]


async def test_a_failed_probe_stays_local_quietly_and_waits_another_interval(
    fallback: FallbackLimitStore, shared: SwitchableStore, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "apipod.limits")
    shared.down = True
    await fallback.cooling(limit_key("k"))
    clock.advance(PROBE)

    assert await fallback.cooling(limit_key("k")) == 0.0
    await fallback.cooling(limit_key("k"))

    assert shared.calls == 2 and fallback.degraded
    assert len(warnings(caplog)) == 1


async def test_leases_are_released_in_the_store_that_issued_them(
    fallback: FallbackLimitStore, shared: SwitchableStore, local: InMemoryLimitStore, clock: FixedClock
) -> None:
    shared_lease = await fallback.acquire(limit_key("c"), limit=2, lease=30)
    shared.down = True
    local_lease = await fallback.acquire(limit_key("c"), limit=2, lease=30)
    assert shared_lease is not None and local_lease is not None
    assert await local.held(limit_key("c")) == 1

    shared.down = False
    clock.advance(PROBE)
    assert await fallback.held(limit_key("c")) == 1  # the probe succeeds: shared again
    assert not fallback.degraded

    await fallback.release(limit_key("c"), local_lease)
    await fallback.release(limit_key("c"), shared_lease)

    assert await local.held(limit_key("c")) == 0
    assert await shared.inner.held(limit_key("c")) == 0


async def test_a_release_that_fails_in_the_outage_is_left_to_expire_and_goes_local(
    fallback: FallbackLimitStore, shared: SwitchableStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "apipod.limits")
    lease = await fallback.acquire(limit_key("c"), limit=1, lease=30)
    assert lease is not None
    shared.down = True

    await fallback.release(limit_key("c"), lease)  # does not raise

    assert fallback.degraded
    assert len(warnings(caplog)) == 1
    assert await shared.inner.held(limit_key("c")) == 1  # still held in Redis, until its lease expires


async def test_cooldowns_during_the_outage_are_local(
    fallback: FallbackLimitStore, shared: SwitchableStore, local: InMemoryLimitStore
) -> None:
    shared.down = True

    await fallback.cool_down(limit_key("acct"), 10)

    assert await fallback.cooling(limit_key("acct")) == pytest.approx(10)
    assert await local.cooling(limit_key("acct")) == pytest.approx(10)
