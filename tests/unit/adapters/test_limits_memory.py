"""The in-memory LimitStore passes the LimitStore contract on a clock that moves only when told."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from apipod.adapters.memory.limits import SWEEP_EVERY, InMemoryLimitStore
from apipod.application.ports import Clock, LimitStore
from tests.contracts.limits import Advance, LimitStoreContract, limit_key


class _ManualClock(Clock):
    def __init__(self) -> None:
        self._now = datetime(2026, 1, 1, tzinfo=UTC)
        self._monotonic = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


@pytest.fixture
def clock() -> _ManualClock:
    return _ManualClock()


class TestInMemoryLimitStore(LimitStoreContract):
    @pytest.fixture
    def store(self, clock: _ManualClock) -> LimitStore:
        return InMemoryLimitStore(clock)

    @pytest.fixture
    def advance(self, clock: _ManualClock) -> Advance:
        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        return advance


async def test_an_entry_leaves_exactly_one_window_later(clock: _ManualClock) -> None:
    store = InMemoryLimitStore(clock)
    assert await store.hit(limit_key("k"), limit=1, window=10.0) is None

    clock.advance(9.999)
    assert await store.hit(limit_key("k"), limit=1, window=10.0) == pytest.approx(0.001)
    clock.advance(0.001)

    assert await store.hit(limit_key("k"), limit=1, window=10.0) is None


async def test_a_lease_ends_exactly_at_its_expiry(clock: _ManualClock) -> None:
    store = InMemoryLimitStore(clock)
    assert await store.acquire(limit_key("c"), limit=1, lease=5.0) is not None

    clock.advance(4.5)
    assert await store.held(limit_key("c")) == 1
    clock.advance(0.5)

    assert await store.held(limit_key("c")) == 0


async def test_a_zero_limit_admits_nothing(clock: _ManualClock) -> None:
    store = InMemoryLimitStore(clock)

    assert await store.hit(limit_key("k"), limit=0, window=1.0) == math.inf
    assert await store.acquire(limit_key("c"), limit=0, lease=1.0) is None


async def test_a_zero_cost_always_fits_and_counts_nothing(clock: _ManualClock) -> None:
    store = InMemoryLimitStore(clock)
    assert await store.hit(limit_key("k"), limit=1, window=1.0) is None

    assert await store.hit(limit_key("k"), limit=1, window=1.0, cost=0) is None
    assert await store.hit(limit_key("k"), limit=1, window=1.0) == pytest.approx(1.0)


@pytest.mark.parametrize(("limit", "window", "cost"), [(1, 0.0, 1), (1, -1.0, 1), (-1, 1.0, 1), (1, 1.0, -1)])
async def test_impossible_windows_are_a_caller_bug(clock: _ManualClock, limit: int, window: float, cost: int) -> None:
    store = InMemoryLimitStore(clock)

    with pytest.raises(ValueError, match="bad rate window"):
        await store.hit(limit_key("k"), limit=limit, window=window, cost=cost)


async def test_idle_keys_are_swept(clock: _ManualClock) -> None:
    store = InMemoryLimitStore(clock)
    for i in range(100):
        await store.hit(limit_key(f"rpm:key:{i}"), limit=5, window=60.0)
        await store.acquire(limit_key(f"conc:key:{i}"), limit=5, lease=30.0)
        await store.cool_down(limit_key(f"cool:{i}"), 10.0)
    await store.acquire(limit_key("live"), limit=5, lease=600.0)

    clock.advance(61.0)
    for _ in range(SWEEP_EVERY):
        await store.hit(limit_key("busy"), limit=2**62, window=1.0)

    assert store._windows.keys() == {limit_key("busy").value}
    assert store._leases.keys() == {limit_key("live").value}
    assert store._cooldowns == {}
