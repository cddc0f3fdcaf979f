"""LimitStore over Redis: the rate windows, leases and cooldowns every apipod process shares.

Each operation is one atomic Lua script (sent once, then called by SHA) or one plain command, timed by the
Redis server's clock, so processes on different hosts agree on windows and expiries.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from apipod.adapters.memory.limits import check_window
from apipod.adapters.redis import scripts
from apipod.application.ports import LimitStore
from apipod.domain.errors import StorageError
from apipod.domain.limits import LimitKey

DEFAULT_PREFIX = "apipod:"
DEFAULT_TIMEOUT = 2.0
"""Seconds for connecting and for each command: a stalled Redis must fail a request, not hang it."""

DRIVER_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)


@contextmanager
def storage_errors(action: str) -> Iterator[None]:
    """Turn redis-py and socket errors raised inside the block into StorageError (chained)."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise StorageError(f"{action}: Redis error ({type(exc).__name__}: {exc})") from exc


class RedisLimitStore(LimitStore):
    """Shared limits in one Redis. A key's two window keys share a hash tag, so the scripts stay cluster-safe.

    Keys are ``<prefix>{<key>}:hits`` (sorted set of ``<cost>:<token>`` scored by time in ms) with
    ``...:hits:total`` (their running sum), ``...:leases`` (lease ids scored by expiry) and ``...:cool``
    (a value whose PX expiry is the cooldown). Every key carries a TTL, so idle state vanishes by itself.
    A cost above the limit can never fit: ``hit``/``peek`` return ``math.inf``. A key is meant to be used with
    one window length.

    Args:
        client: a ``redis.asyncio.Redis``; ``decode_responses`` may be either.
        prefix: put before every key, to share one Redis between deployments (and tests).
        owns_client: ``close()`` closes the client (``from_url`` sets it).
    """

    def __init__(self, client: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX, owns_client: bool = False) -> None:
        self._client = client
        self._prefix = prefix
        self._owns_client = owns_client
        self._hit = client.register_script(scripts.HIT)
        self._acquire = client.register_script(scripts.ACQUIRE)
        self._held = client.register_script(scripts.HELD)
        self._cool_down = client.register_script(scripts.COOL_DOWN)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX, **options: Any) -> RedisLimitStore:
        """A store over a new connection pool for ``url`` (``redis://``, ``rediss://``, ``unix://``).

        ``options`` go to ``redis.asyncio.from_url``; socket timeouts default to ``DEFAULT_TIMEOUT``."""
        options.setdefault("socket_connect_timeout", DEFAULT_TIMEOUT)
        options.setdefault("socket_timeout", DEFAULT_TIMEOUT)
        return cls(aioredis.from_url(url, **options), prefix=prefix, owns_client=True)

    async def close(self) -> None:
        """Close the connection pool if this store opened it."""
        if self._owns_client:
            with storage_errors("closing the limit store"):
                await self._client.aclose()

    async def hit(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        return await self._window(key.value, limit, window, cost, count=True)

    async def peek(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        return await self._window(key.value, limit, window, cost, count=False)

    async def acquire(self, key: LimitKey, *, limit: int, lease: float) -> str | None:
        lease_id = secrets.token_urlsafe(12)
        with storage_errors("taking a concurrency slot"):
            taken = await self._acquire(keys=[self._key(key.value, "leases")], args=[limit, lease * 1000.0, lease_id])
        return lease_id if taken else None

    async def release(self, key: LimitKey, lease_id: str) -> None:
        with storage_errors("releasing a concurrency slot"):
            await self._client.zrem(self._key(key.value, "leases"), lease_id)

    async def held(self, key: LimitKey) -> int:
        with storage_errors("counting concurrency slots"):
            return int(await self._held(keys=[self._key(key.value, "leases")]))

    async def cool_down(self, key: LimitKey, seconds: float) -> None:
        ms = math.ceil(seconds * 1000.0)
        if ms <= 0:
            return
        with storage_errors("starting a cooldown"):
            await self._cool_down(keys=[self._key(key.value, "cool")], args=[ms])

    async def cooling(self, key: LimitKey) -> float:
        with storage_errors("reading a cooldown"):
            ms = await self._client.pttl(self._key(key.value, "cool"))
        return ms / 1000.0 if ms > 0 else 0.0

    async def _window(self, key: str, limit: int, window: float, cost: int, *, count: bool) -> float | None:
        check_window(limit, window, cost)
        log = self._key(key, "hits")
        args = [limit, window * 1000.0, cost, 1 if count else 0, secrets.token_urlsafe(9) if count else ""]
        with storage_errors("counting a rate limit" if count else "checking a rate limit"):
            wait = await self._hit(keys=[log, log + ":total"], args=args)
        if wait is None:
            return None
        ms = float(wait)
        return max(ms / 1000.0, 1e-6)  # a refusal is never a zero wait: callers test the result for truth

    def _key(self, key: str, kind: str) -> str:
        return f"{self._prefix}{{{key}}}:{kind}"
