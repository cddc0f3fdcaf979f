"""One refresh for many waiters: ``SingleFlight``, and the lazily refreshed ``TokenCache`` built on it.

Upstreams that trade an account's long-lived credential for a short-lived bearer (Copilot, Antigravity)
cache the bearer, refresh it a margin before it expires, and mint it once however many requests need it at
that moment.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

from apipod.application.ports import Clock
from apipod.domain.errors import UpstreamAuthError, UpstreamError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Runs one ``fn()`` per key at a time; concurrent callers of the same key share its result.

    The work runs as a task shielded from its callers, so a caller that gives up (a client disconnects)
    does not cancel the refresh the others are waiting for.
    """

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, fn: Callable[[], Awaitable[V]]) -> V:
        task = self._flights.get(key)
        if task is None:

            async def work() -> V:
                return await fn()

            task = asyncio.ensure_future(work())
            self._flights[key] = task
            task.add_done_callback(functools.partial(self._landed, key))
        return await asyncio.shield(task)

    def _landed(self, key: K, task: asyncio.Task[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have left, and that is not worth a warning


class Expiring(Protocol):
    """A minted token's schedule, on the clock's monotonic scale."""

    @property
    def refresh_at(self) -> float: ...

    @property
    def expires_at(self) -> float: ...


T = TypeVar("T", bound=Expiring)


class TokenCache(Generic[K, T]):
    """Tokens by key, minted when missing or due for refresh, one mint per key at a time.

    A failed refresh keeps serving a token that is due but has not expired yet, unless the credentials were
    refused (``UpstreamAuthError``): an outage of the token endpoint does not take the account down early.

    Args:
        clock: ``monotonic()`` is compared with the tokens' ``refresh_at`` / ``expires_at``.
        log: the adapter's logger; ``what`` names the token in its messages (e.g. "Copilot token").
    """

    __slots__ = ("_cache", "_clock", "_flight", "_log", "_what")

    def __init__(self, clock: Clock, log: logging.Logger, what: str) -> None:
        self._clock = clock
        self._log = log
        self._what = what
        self._cache: dict[K, T] = {}
        self._flight: SingleFlight[K, T] = SingleFlight()

    async def get(self, key: K, upstream: str, mint: Callable[[], Awaitable[T]]) -> T:
        """The cached token for ``key``, or the one ``mint()`` makes when it is missing or due.

        Raises:
            UpstreamError: whatever ``mint()`` raised, when no still-valid token is cached.
        """
        token = self._cache.get(key)
        if token is not None and self._clock.monotonic() < token.refresh_at:
            return token
        return await self._flight.run(key, functools.partial(self._refresh, key, upstream, mint))

    def invalidate(self, key: K, token: T) -> None:
        """Drop ``token`` (the upstream refused it). A newer token already cached is kept."""
        if self._cache.get(key) is token:
            del self._cache[key]

    async def _refresh(self, key: K, upstream: str, mint: Callable[[], Awaitable[T]]) -> T:
        cached = self._cache.get(key)
        if cached is not None and self._clock.monotonic() < cached.refresh_at:
            return cached  # another flight landed between the caller's check and this one
        try:
            token = await mint()
        except UpstreamError as exc:
            if (
                cached is not None
                and not isinstance(exc, UpstreamAuthError)
                and self._clock.monotonic() < cached.expires_at
            ):
                self._log.info("upstream %s: %s refresh failed; the current one is still valid", upstream, self._what)
                return cached
            self._cache.pop(key, None)
            raise
        self._cache[key] = token
        return token
