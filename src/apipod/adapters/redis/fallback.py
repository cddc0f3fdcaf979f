"""A LimitStore that survives its shared store going away: Redis first, this process's own store while Redis
is down, Redis again once it answers.

Without it a Redis outage fails every request (each one needs a rate window or a slot). With it the limits
are still enforced, only per process instead of across all of them, which is the better failure for a
gateway: the warning says so once, and the log says when sharing is back.

Leases are tagged with the store that issued them (``LOCAL_LEASE`` before a local lease id), so a release
always reaches the store holding the slot, whichever store is active by then. A shared lease whose release
fails while Redis is down is left to its own expiry: Redis drops it after its lease time.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from apipod.application.ports import Clock, LimitStore
from apipod.domain.errors import StorageError
from apipod.domain.limits import LimitKey

log = logging.getLogger("apipod.limits")

T = TypeVar("T")

LOCAL_LEASE = "local:"
"""Prefix of lease ids issued by the local store (Redis lease ids never contain a colon)."""

DEFAULT_PROBE_INTERVAL = 5.0
"""Seconds between attempts to use the shared store again while it is down."""


class FallbackLimitStore(LimitStore):
    """``shared`` (Redis) while it works; ``local`` (in memory) from its first StorageError until a probe,
    ``probe_interval`` seconds later, finds it working again.

    Args:
        shared: the store every process uses.
        local: this process's store, used during an outage.
        clock: times the probes (``monotonic``).
        probe_interval: seconds between probes of a failed shared store.
    """

    def __init__(
        self,
        shared: LimitStore,
        local: LimitStore,
        clock: Clock,
        *,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
    ) -> None:
        self._shared = shared
        self._local = local
        self._clock = clock
        self._probe_interval = probe_interval
        self._next_probe: float | None = None  # None: the shared store is in use
        self.outages = 0

    @property
    def degraded(self) -> bool:
        """True while limits are this process's own."""
        return self._next_probe is not None

    async def hit(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        return await self._call(
            lambda s: s.hit(key, limit=limit, window=window, cost=cost),
            lambda: self._local.hit(key, limit=limit, window=window, cost=cost),
        )

    async def peek(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        return await self._call(
            lambda s: s.peek(key, limit=limit, window=window, cost=cost),
            lambda: self._local.peek(key, limit=limit, window=window, cost=cost),
        )

    async def acquire(self, key: LimitKey, *, limit: int, lease: float) -> str | None:
        async def local() -> str | None:
            lease_id = await self._local.acquire(key, limit=limit, lease=lease)
            return None if lease_id is None else LOCAL_LEASE + lease_id

        return await self._call(lambda s: s.acquire(key, limit=limit, lease=lease), local)

    async def release(self, key: LimitKey, lease_id: str) -> None:
        if lease_id.startswith(LOCAL_LEASE):
            await self._local.release(key, lease_id.removeprefix(LOCAL_LEASE))
            return
        try:
            await self._shared.release(key, lease_id)
        except StorageError as exc:
            # The slot is in Redis; Redis expires it by itself. Nothing to do here but go local.
            self._went_down(exc)

    async def held(self, key: LimitKey) -> int:
        return await self._call(lambda s: s.held(key), lambda: self._local.held(key))

    async def cool_down(self, key: LimitKey, seconds: float) -> None:
        await self._call(lambda s: s.cool_down(key, seconds), lambda: self._local.cool_down(key, seconds))

    async def cooling(self, key: LimitKey) -> float:
        return await self._call(lambda s: s.cooling(key), lambda: self._local.cooling(key))

    async def _call(self, shared: Callable[[LimitStore], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        if self._next_probe is not None:
            now = self._clock.monotonic()
            if now < self._next_probe:
                return await local()
            # One caller probes; the others stay local until it has an answer.
            self._next_probe = now + self._probe_interval
            try:
                result = await shared(self._shared)
            except StorageError:
                return await local()
            self._next_probe = None
            log.warning("shared limits are back: Redis answers again, limits apply across processes")
            return result
        try:
            return await shared(self._shared)
        except StorageError as exc:
            self._went_down(exc)
            return await local()

    def _went_down(self, exc: StorageError) -> None:
        if self._next_probe is None:
            self.outages += 1
            log.warning(
                "shared limits unavailable (%s): limits now apply to this process only; retrying Redis every %.0fs",
                exc.message,
                self._probe_interval,
            )
        self._next_probe = self._clock.monotonic() + self._probe_interval
