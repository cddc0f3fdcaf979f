from __future__ import annotations

from typing import Protocol

from apipod.domain.limits import LimitKey


class LimitStore(Protocol):
    """Request-rate windows, concurrency leases and cooldowns shared by every process that uses the same
    store (in memory: one process; Redis: all of them).

    Keys are typed (``apipod.domain.limits``); stores index by ``key.value``, a namespaced string.
    """

    async def hit(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        """Count ``cost`` against a sliding ``window`` (seconds) of at most ``limit``, atomically.

        Returns None when it fit (and was counted), else the seconds until it would fit (not counted).
        """
        ...

    async def peek(self, key: LimitKey, *, limit: int, window: float, cost: int = 1) -> float | None:
        """Like ``hit`` without counting."""
        ...

    async def acquire(self, key: LimitKey, *, limit: int, lease: float) -> str | None:
        """Take one of ``limit`` concurrency slots as a lease that expires after ``lease`` seconds unless
        released. Returns a lease id, or None when every slot is taken."""
        ...

    async def release(self, key: LimitKey, lease_id: str) -> None:
        """Give a slot back. Idempotent."""
        ...

    async def held(self, key: LimitKey) -> int:
        """Slots held now (expired leases excluded)."""
        ...

    async def cool_down(self, key: LimitKey, seconds: float) -> None:
        """Rest ``key`` for ``seconds`` (extends, never shortens, a running cooldown)."""
        ...

    async def cooling(self, key: LimitKey) -> float:
        """Seconds left of ``key``'s cooldown; 0 when it is not resting."""
        ...
