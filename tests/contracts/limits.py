"""Behaviour every LimitStore must show. Subclass and provide:

- a ``store`` fixture: an empty LimitStore;
- an ``advance`` fixture: an async callable that lets ``seconds`` pass for the store (move a fake clock,
  or really sleep for a store on a server's clock);
- class attributes ``window`` (the base time unit of the tests, in seconds: short for real sleeps) and
  ``slack`` (how far a measured wait may drift from the exact value: 0 for a fake clock, a few
  milliseconds of round trips and scheduling for a real one).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

import pytest

from apipod.application.ports import LimitStore
from apipod.domain.limits import LimitKey, LimitKind

Advance = Callable[[float], Awaitable[None]]


def limit_key(name: str) -> LimitKey:
    """Any kind will do: the contract is about one key's behaviour."""
    return LimitKey.of(LimitKind.MODEL_RPM, name)


class LimitStoreContract:
    window: float = 60.0
    slack: float = 1e-9

    @pytest.fixture
    def store(self) -> LimitStore:
        raise NotImplementedError("subclasses provide an empty LimitStore")

    @pytest.fixture
    def advance(self) -> Advance:
        raise NotImplementedError("subclasses provide a way to let time pass")

    def assert_wait(self, wait: float | None, expected: float) -> None:
        assert wait is not None, "expected a refusal"
        assert wait > 0
        assert wait == pytest.approx(expected, abs=self.slack)

    # -- hit / peek ------------------------------------------------------------------------------------

    async def test_hits_under_the_limit_are_counted(self, store: LimitStore) -> None:
        w = self.window

        results = [await store.hit(limit_key("k"), limit=3, window=w) for _ in range(3)]

        assert results == [None, None, None]
        self.assert_wait(await store.hit(limit_key("k"), limit=3, window=w), w)

    async def test_a_refusal_is_not_counted(self, store: LimitStore, advance: Advance) -> None:
        w = self.window
        assert await store.hit(limit_key("k"), limit=1, window=w) is None
        assert await store.hit(limit_key("k"), limit=1, window=w) is not None
        assert await store.hit(limit_key("k"), limit=1, window=w) is not None

        await advance(w * 1.1)

        assert await store.hit(limit_key("k"), limit=1, window=w) is None

    async def test_refusal_waits_until_the_oldest_entries_leave_the_window(
        self, store: LimitStore, advance: Advance
    ) -> None:
        w = self.window
        assert await store.hit(limit_key("k"), limit=2, window=w) is None  # t = 0
        await advance(w * 0.25)
        assert await store.hit(limit_key("k"), limit=2, window=w) is None  # t = w/4
        await advance(w * 0.25)  # t = w/2

        self.assert_wait(await store.hit(limit_key("k"), limit=2, window=w), w * 0.5)  # the first entry leaves at w
        self.assert_wait(await store.hit(limit_key("k"), limit=2, window=w, cost=2), w * 0.75)  # both must leave

    async def test_waiting_the_returned_seconds_makes_room(self, store: LimitStore, advance: Advance) -> None:
        w = self.window
        assert await store.hit(limit_key("k"), limit=1, window=w) is None
        await advance(w * 0.4)
        wait = await store.hit(limit_key("k"), limit=1, window=w)
        assert wait is not None

        await advance(wait)

        assert await store.hit(limit_key("k"), limit=1, window=w) is None

    async def test_the_window_slides(self, store: LimitStore, advance: Advance) -> None:
        w = self.window
        assert await store.hit(limit_key("k"), limit=2, window=w) is None  # t = 0
        await advance(w * 0.5)
        assert await store.hit(limit_key("k"), limit=2, window=w) is None  # t = w/2
        assert await store.hit(limit_key("k"), limit=2, window=w) is not None
        await advance(w * 0.6)  # t = 1.1 w: the first entry has left, the second has not

        assert await store.hit(limit_key("k"), limit=2, window=w) is None
        self.assert_wait(await store.hit(limit_key("k"), limit=2, window=w), w * 0.4)

    async def test_costs_above_one_add_up(self, store: LimitStore) -> None:
        w = self.window
        assert await store.hit(limit_key("tpm"), limit=10, window=w, cost=7) is None
        self.assert_wait(await store.hit(limit_key("tpm"), limit=10, window=w, cost=4), w)
        assert await store.hit(limit_key("tpm"), limit=10, window=w, cost=3) is None

        self.assert_wait(await store.peek(limit_key("tpm"), limit=10, window=w, cost=1), w)

    async def test_a_cost_above_the_limit_never_fits(self, store: LimitStore) -> None:
        w = self.window

        assert await store.hit(limit_key("k"), limit=5, window=w, cost=6) == math.inf
        assert await store.peek(limit_key("k"), limit=5, window=w, cost=6) == math.inf
        assert await store.hit(limit_key("k"), limit=5, window=w, cost=5) is None  # the refusal took nothing

    async def test_peek_does_not_count(self, store: LimitStore) -> None:
        w = self.window

        assert await store.peek(limit_key("k"), limit=1, window=w) is None
        assert await store.peek(limit_key("k"), limit=1, window=w) is None
        assert await store.hit(limit_key("k"), limit=1, window=w) is None

        self.assert_wait(await store.peek(limit_key("k"), limit=1, window=w), w)

    async def test_peek_gives_the_wait_hit_would(self, store: LimitStore, advance: Advance) -> None:
        w = self.window
        assert await store.hit(limit_key("k"), limit=2, window=w, cost=2) is None
        await advance(w * 0.5)

        self.assert_wait(await store.peek(limit_key("k"), limit=2, window=w), w * 0.5)
        self.assert_wait(await store.hit(limit_key("k"), limit=2, window=w), w * 0.5)

    async def test_keys_are_independent(self, store: LimitStore) -> None:
        w = self.window
        assert await store.hit(limit_key("a"), limit=1, window=w) is None

        assert await store.hit(limit_key("b"), limit=1, window=w) is None
        assert await store.hit(limit_key("a"), limit=1, window=w) is not None

    # -- leases ----------------------------------------------------------------------------------------

    async def test_acquire_up_to_the_limit_then_none(self, store: LimitStore) -> None:
        leases = [await store.acquire(limit_key("c"), limit=3, lease=self.window) for _ in range(3)]

        assert all(lease is not None for lease in leases)
        assert len(set(leases)) == 3
        assert await store.acquire(limit_key("c"), limit=3, lease=self.window) is None
        assert await store.held(limit_key("c")) == 3

    async def test_release_frees_a_slot(self, store: LimitStore) -> None:
        first = await store.acquire(limit_key("c"), limit=2, lease=self.window)
        assert first is not None
        assert await store.acquire(limit_key("c"), limit=2, lease=self.window) is not None

        await store.release(limit_key("c"), first)

        assert await store.held(limit_key("c")) == 1
        assert await store.acquire(limit_key("c"), limit=2, lease=self.window) is not None
        assert await store.acquire(limit_key("c"), limit=2, lease=self.window) is None

    async def test_release_is_idempotent(self, store: LimitStore) -> None:
        first = await store.acquire(limit_key("c"), limit=2, lease=self.window)
        second = await store.acquire(limit_key("c"), limit=2, lease=self.window)
        assert first is not None
        assert second is not None

        await store.release(limit_key("c"), first)
        await store.release(limit_key("c"), first)
        await store.release(limit_key("c"), "never-issued")
        await store.release(limit_key("elsewhere"), second)

        assert await store.held(limit_key("c")) == 1
        assert await store.acquire(limit_key("c"), limit=2, lease=self.window) is not None
        assert await store.acquire(limit_key("c"), limit=2, lease=self.window) is None

    async def test_an_expired_lease_frees_its_slot(self, store: LimitStore, advance: Advance) -> None:
        w = self.window
        assert await store.acquire(limit_key("c"), limit=2, lease=w * 0.5) is not None
        assert await store.acquire(limit_key("c"), limit=2, lease=w * 2) is not None
        assert await store.acquire(limit_key("c"), limit=2, lease=w) is None

        await advance(w * 0.6)

        assert await store.held(limit_key("c")) == 1
        assert await store.acquire(limit_key("c"), limit=2, lease=w) is not None
        assert await store.held(limit_key("c")) == 2

    async def test_held_is_zero_for_an_unknown_key(self, store: LimitStore) -> None:
        assert await store.held(limit_key("nobody")) == 0

    # -- cooldowns -------------------------------------------------------------------------------------

    async def test_cooling_is_zero_when_not_resting(self, store: LimitStore) -> None:
        assert await store.cooling(limit_key("acct")) == 0.0

    async def test_cool_down_extends_never_shortens(self, store: LimitStore) -> None:
        w = self.window
        await store.cool_down(limit_key("acct"), w)
        assert await store.cooling(limit_key("acct")) == pytest.approx(w, abs=self.slack)

        await store.cool_down(limit_key("acct"), w * 0.5)
        assert await store.cooling(limit_key("acct")) == pytest.approx(w, abs=self.slack)

        await store.cool_down(limit_key("acct"), w * 2)
        assert await store.cooling(limit_key("acct")) == pytest.approx(w * 2, abs=self.slack)

    async def test_a_cooldown_runs_out(self, store: LimitStore, advance: Advance) -> None:
        w = self.window
        await store.cool_down(limit_key("acct"), w * 0.5)
        await advance(w * 0.25)
        assert await store.cooling(limit_key("acct")) == pytest.approx(w * 0.25, abs=self.slack)

        await advance(w * 0.35)

        assert await store.cooling(limit_key("acct")) == 0.0
        await store.cool_down(limit_key("acct"), w * 0.2)  # a new cooldown starts from now
        assert await store.cooling(limit_key("acct")) == pytest.approx(w * 0.2, abs=self.slack)

    # -- concurrency -----------------------------------------------------------------------------------

    async def test_concurrent_hits_never_overshoot(self, store: LimitStore) -> None:
        results = await asyncio.gather(
            *(store.hit(limit_key("burst"), limit=10, window=self.window) for _ in range(100))
        )

        assert sum(1 for result in results if result is None) == 10

    async def test_concurrent_acquires_never_overshoot(self, store: LimitStore) -> None:
        leases = await asyncio.gather(
            *(store.acquire(limit_key("burst"), limit=5, lease=self.window) for _ in range(50))
        )

        taken = [lease for lease in leases if lease is not None]
        assert len(taken) == 5
        assert len(set(taken)) == 5
        assert await store.held(limit_key("burst")) == 5
