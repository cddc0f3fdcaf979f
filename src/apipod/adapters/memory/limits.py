"""LimitStore in dicts: exact sliding-window logs, concurrency leases and cooldowns for one process.

NOTE: no method awaits, so each call is one atomic step on the event loop; that is what the Redis store gets
from its Lua scripts.
"""

from __future__ import annotations

import itertools
import math
from collections import deque

from apipod.application.ports import Clock, LimitStore
from apipod.domain.limits import LimitKey

SWEEP_EVERY = 4096
"""Calls between sweeps of idle keys (emptied windows, expired leases and cooldowns), so a store fed many
short-lived keys (one per API key) does not grow without bound."""


def check_window(limit: int, window: float, cost: int) -> None:
    """Reject arguments no window can honour (a caller bug, not a limit)."""
    if window <= 0 or limit < 0 or cost < 0:
        raise ValueError(f"bad rate window: limit={limit} window={window} cost={cost}")


class _Window:
    """The entries of one key still inside its window, oldest first, and the sum of their costs."""

    __slots__ = ("entries", "total", "window")

    def __init__(self, window: float) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0
        self.window = window

    def trim(self, now: float) -> None:
        cutoff = now - self.window
        entries = self.entries
        while entries and entries[0][0] <= cutoff:
            self.total -= entries.popleft()[1]

    def wait(self, now: float, limit: int, cost: int) -> float | None:
        """None when ``cost`` fits now, else the seconds until enough of the oldest entries have left."""
        if cost > limit:
            return math.inf
        need = self.total + cost - limit
        if need <= 0:
            return None
        freed = 0
        for at, spent in self.entries:
            freed += spent
            if freed >= need:
                return at + self.window - now
        return math.inf  # unreachable: cost <= limit, so freeing every entry makes room


class InMemoryLimitStore(LimitStore):
    """One process's rate windows, leases and cooldowns, timed by ``clock.monotonic()``.

    Windows are exact logs of ``(time, cost)``, so a refusal's wait is exactly when the request would fit.
    A cost above the limit can never fit: ``hit``/``peek`` return ``math.inf``. A key is meant to be used with
    one window length (entries are trimmed by the window of the call at hand).
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._cooldowns: dict[str, float] = {}
        self._lease_ids = itertools.count(1)
        self._calls = 0

    async def hit(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        return self._check(key.value, limit, window, cost, count=True)

    async def peek(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        return self._check(key.value, limit, window, cost, count=False)

    async def acquire(self, key: LimitKey, *, limit: int, lease: float) -> str | None:
        now = self._tick()
        leases = self._live_leases(key.value, now)
        if len(leases) >= limit:
            return None
        lease_id = f"lease_{next(self._lease_ids)}"
        leases[lease_id] = now + lease
        self._leases[key.value] = leases
        return lease_id

    async def release(self, key: LimitKey, lease_id: str) -> None:
        leases = self._leases.get(key.value)
        if leases is not None:
            leases.pop(lease_id, None)
            if not leases:
                del self._leases[key.value]

    async def held(self, key: LimitKey) -> int:
        return len(self._live_leases(key.value, self._clock.monotonic()))

    async def cool_down(self, key: LimitKey, seconds: float) -> None:
        now = self._tick()
        until = now + seconds
        if until > self._cooldowns.get(key.value, now):
            self._cooldowns[key.value] = until

    async def cooling(self, key: LimitKey) -> float:
        until = self._cooldowns.get(key.value)
        if until is None:
            return 0.0
        left = until - self._clock.monotonic()
        if left <= 0:
            del self._cooldowns[key.value]
            return 0.0
        return left

    def _check(self, key: str, limit: int, window: float, cost: int, *, count: bool) -> float | None:
        check_window(limit, window, cost)
        now = self._tick() if count else self._clock.monotonic()
        entries = self._windows.get(key)
        if entries is None:
            entries = _Window(window)
        else:
            entries.window = window
            entries.trim(now)
        wait = entries.wait(now, limit, cost)
        if wait is None and count and cost:
            entries.entries.append((now, cost))
            entries.total += cost
            self._windows[key] = entries
        return wait

    def _live_leases(self, key: str, now: float) -> dict[str, float]:
        leases = self._leases.get(key)
        if leases is None:
            return {}
        expired = [lease_id for lease_id, expiry in leases.items() if expiry <= now]
        for lease_id in expired:
            del leases[lease_id]
        return leases

    def _tick(self) -> float:
        """The time now, sweeping idle keys every ``SWEEP_EVERY`` writing calls."""
        now = self._clock.monotonic()
        self._calls += 1
        if self._calls >= SWEEP_EVERY:
            self._calls = 0
            self._sweep(now)
        return now

    def _sweep(self, now: float) -> None:
        for key, entries in list(self._windows.items()):
            entries.trim(now)
            if not entries.entries:
                del self._windows[key]
        for key in list(self._leases):
            if not self._live_leases(key, now):
                del self._leases[key]
        for key, until in list(self._cooldowns.items()):
            if until <= now:
                del self._cooldowns[key]
