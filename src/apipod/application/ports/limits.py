from __future__ import annotations

from typing import Protocol


class LimitStore(Protocol):
    """Request-rate windows, concurrency leases and cooldowns shared by every process that uses the same
    store (in memory: one process; Redis: all of them).

    Keys are opaque strings chosen by the caller ("model:mini", "key:abc", "account:openai/#0").
    """

    async def hit(self, key: str, *, limit: int, window: float, cost: int = 1) -> float | None:
        """Count ``cost`` against a sliding ``window`` (seconds) of at most ``limit``, atomically.

        Returns None when it fit (and was counted), else the seconds until it would fit (not counted).
        """
        ...

    async def peek(self, key: str, *, limit: int, window: float, cost: int = 1) -> float | None:
        """Like ``hit`` without counting."""
        ...

    async def acquire(self, key: str, *, limit: int, lease: float) -> str | None:
        """Take one of ``limit`` concurrency slots as a lease that expires after ``lease`` seconds unless
        released. Returns a lease id, or None when every slot is taken."""
        ...

    async def release(self, key: str, lease_id: str) -> None:
        """Give a slot back. Idempotent."""
        ...

    async def held(self, key: str) -> int:
        """Slots held now (expired leases excluded)."""
        ...

    async def cool_down(self, key: str, seconds: float) -> None:
        """Rest ``key`` for ``seconds`` (extends, never shortens, a running cooldown)."""
        ...

    async def cooling(self, key: str) -> float:
        """Seconds left of ``key``'s cooldown; 0 when it is not resting."""
        ...
