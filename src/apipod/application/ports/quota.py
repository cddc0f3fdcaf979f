from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from apipod.domain.quota import Budget, Reservation, WindowUse


class QuotaLedger(Protocol):
    """Per-key budget windows: reservations held before an upstream call, settled after it."""

    async def reserve(
        self,
        *,
        key_id: str,
        budgets: tuple[Budget, ...],
        tokens: int,
        now: datetime,
        ttl: float,
        cost: Decimal = Decimal(0),
    ) -> Reservation:
        """Hold ``tokens``, ``cost`` (money, counted by budgets with a ``cost`` limit) and one request in every
        window of ``budgets`` at once, or nothing. Money is counted exactly, in units of
        ``domain.pricing.COST_QUANTUM``.

        Atomic: concurrent reservations, in one process or many, never take a window past its limit.
        The hold expires ``ttl`` seconds from ``now`` unless settled or released.

        Raises:
            QuotaExceededError: a window has no room; it names the window and when it resets.
        """
        ...

    async def settle(self, reservation: Reservation, *, tokens: int, now: datetime, cost: Decimal = Decimal(0)) -> None:
        """Replace the hold with the real spend of ``tokens`` and ``cost`` (and its one request). Idempotent: a second
        settle or release of the same reservation changes nothing. ``now`` (the injected clock) stamps the
        closing, so housekeeping never depends on the database's own clock."""
        ...

    async def release(self, reservation: Reservation, *, now: datetime) -> None:
        """Give the whole hold back (the request cost nothing). Idempotent."""
        ...

    async def sweep(self, now: datetime) -> int:
        """Release reservations that expired unsettled before ``now``; returns how many."""
        ...

    async def usage(self, *, key_id: str, budgets: tuple[Budget, ...], now: datetime) -> tuple[WindowUse, ...]:
        """What is spent plus held in the current window of each budget, in order."""
        ...
