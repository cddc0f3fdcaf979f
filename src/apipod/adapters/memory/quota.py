"""QuotaLedger in dicts. Deliberately no smarter than the SQL ledgers: per-window counters plus
reservations that are pending until settled, released or swept."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import attrs

from apipod.adapters.system import RandomIdGenerator
from apipod.application.ports import IdGenerator, QuotaLedger
from apipod.domain.errors import QuotaExceededError
from apipod.domain.pricing import rounded
from apipod.domain.quota import (
    Budget,
    Reservation,
    WindowHold,
    WindowUse,
    exhausted_unit,
    first_exhausted,
    holds_for,
)

PRUNE_AFTER = timedelta(days=1)
"""Counters of windows that ended longer ago than this are dropped by ``sweep`` (nothing reads them)."""


_WHAT = {"tokens": "Token", "requests": "Request", "cost": "Cost"}
_NO_COST = Decimal(0)


def quota_exceeded_error(
    budget: Budget, use: WindowUse, tokens: int, now: datetime, cost: Decimal = _NO_COST
) -> QuotaExceededError:
    """The error for ``budget`` having no room for one request of ``tokens`` and ``cost`` at ``now``: it names
    the window and when it resets, and ``retry_after`` is the seconds until then. Shared by every ledger."""
    _, end = budget.window.bounds(now)
    what = _WHAT.get(exhausted_unit(budget, use, tokens, cost) or "requests", "Request")
    name = budget.window.name
    return QuotaExceededError(
        f"{what} budget for window '{name}' is exhausted; it resets at {end.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        window=name,
        retry_after=max((end - now).total_seconds(), 0.001),
    )


@attrs.define
class _Counter:
    tokens: int
    requests: int
    end: datetime
    cost: Decimal = _NO_COST


@attrs.frozen
class _Pending:
    reservation: Reservation
    counts_tokens: tuple[bool, ...]  # per hold: does its budget count tokens (settle adjusts only those)
    counts_cost: tuple[bool, ...]  # per hold: does its budget count money


class InMemoryQuotaLedger(QuotaLedger):
    """NOTE: no method awaits between reading and writing the counters, so each call is one atomic step
    on the event loop; that is what the SQL ledgers get from a transaction."""

    def __init__(self, ids: IdGenerator | None = None) -> None:
        self._ids = ids if ids is not None else RandomIdGenerator()
        self._counters: dict[tuple[str, str, datetime], _Counter] = {}
        self._pending: dict[str, _Pending] = {}

    async def reserve(
        self,
        *,
        key_id: str,
        budgets: tuple[Budget, ...],
        tokens: int,
        now: datetime,
        ttl: float,
        cost: Decimal = _NO_COST,
    ) -> Reservation:
        cost = rounded(max(cost, _NO_COST))
        holds = holds_for(budgets, now, tokens, cost)
        uses = tuple(self._use(key_id, hold) for hold in holds)
        exhausted = first_exhausted(budgets, uses, tokens, cost)
        if exhausted is not None:
            raise quota_exceeded_error(exhausted, uses[budgets.index(exhausted)], tokens, now, cost)
        for hold in holds:
            counter = self._counters.get((key_id, hold.window, hold.start))
            if counter is None:
                counter = self._counters[(key_id, hold.window, hold.start)] = _Counter(0, 0, hold.end)
            counter.tokens += hold.tokens
            counter.requests += hold.requests
            counter.cost += hold.cost
        reservation = Reservation(
            id=self._ids.new_id("rsv_"),
            key_id=key_id,
            tokens=tokens,
            holds=holds,
            expires_at=now + timedelta(seconds=ttl),
            cost=cost,
        )
        self._pending[reservation.id] = _Pending(
            reservation, tuple(b.tokens is not None for b in budgets), tuple(b.cost is not None for b in budgets)
        )
        return reservation

    async def settle(self, reservation: Reservation, *, tokens: int, now: datetime, cost: Decimal = _NO_COST) -> None:
        pending = self._pending.pop(reservation.id, None)
        if pending is None:
            return
        held = pending.reservation
        cost = rounded(max(cost, _NO_COST))
        for hold, counts_tokens, counts_cost in zip(
            held.holds, pending.counts_tokens, pending.counts_cost, strict=True
        ):
            self._adjust(
                held.key_id,
                hold,
                tokens=tokens - hold.tokens if counts_tokens else 0,
                requests=0,
                cost=cost - hold.cost if counts_cost else _NO_COST,
            )

    async def release(self, reservation: Reservation, *, now: datetime) -> None:
        pending = self._pending.pop(reservation.id, None)
        if pending is not None:
            self._give_back(pending.reservation)

    async def sweep(self, now: datetime) -> int:
        expired = [p.reservation for p in self._pending.values() if p.reservation.expires_at < now]
        for reservation in expired:
            del self._pending[reservation.id]
            self._give_back(reservation)
        stale = now - PRUNE_AFTER
        for slot in [s for s, c in self._counters.items() if c.end < stale]:
            del self._counters[slot]
        return len(expired)

    async def usage(self, *, key_id: str, budgets: tuple[Budget, ...], now: datetime) -> tuple[WindowUse, ...]:
        return tuple(self._use(key_id, hold) for hold in holds_for(budgets, now, 0))

    def _use(self, key_id: str, hold: WindowHold) -> WindowUse:
        counter = self._counters.get((key_id, hold.window, hold.start))
        if counter is None:
            return WindowUse()
        return WindowUse(tokens=counter.tokens, requests=counter.requests, cost=counter.cost)

    def _give_back(self, reservation: Reservation) -> None:
        for hold in reservation.holds:
            self._adjust(reservation.key_id, hold, tokens=-hold.tokens, requests=-hold.requests, cost=-hold.cost)

    def _adjust(self, key_id: str, hold: WindowHold, *, tokens: int, requests: int, cost: Decimal) -> None:
        counter = self._counters.get((key_id, hold.window, hold.start))
        if counter is not None:  # None: the window ended long ago and was pruned
            counter.tokens = max(counter.tokens + tokens, 0)
            counter.requests = max(counter.requests + requests, 0)
            counter.cost = max(counter.cost + cost, _NO_COST)
