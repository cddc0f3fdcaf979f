"""LeasedQuotaLedger: budget leases (domain/quota_lease.py) over a SQL ledger, PostgreSQL or SQLite.

Every reservation on a key otherwise writes that key's window rows twice (reserve, settle), so all requests on
one key queue behind each other's commits: on PostgreSQL about 750 reservations/s with one process and fewer
with two; on SQLite two write transactions per request, a large share of a governed request's cost. Here a
process debits a
block of the budget in one statement and hands reservations out of it in memory; the block's real spend is
written, and the rest given back, in one more statement when its last reservation ends.

What stays true:
- no overspend, across any number of processes: a reservation is only served from room the database already
  holds for this process;
- one process admits exactly what the budget allows: before refusing, it gives its own unused room back and
  asks once more;
- a lease is not kept idle: it closes as soon as none of its reservations is in flight (and it stops taking
  new ones after ``lease_seconds``), so unused room is held only while this process has requests on the key.
  Near the limit another process can therefore be refused while this one still has room in flight; a lease
  never takes more than ``share`` of what is left, so that margin shrinks with the room;
- a crash loses nothing that was not already lost without leases: the block expires like any reservation and
  the sweeper gives it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import attrs

from apipod.adapters.quota_windows import exceeded, merge_windows, uses_of
from apipod.adapters.system import RandomIdGenerator
from apipod.application.ports import IdGenerator, QuotaLedger
from apipod.domain.errors import StorageError
from apipod.domain.pricing import from_units, to_units
from apipod.domain.quota import Budget, Reservation, WindowUse, holds_for
from apipod.domain.quota_lease import NOTHING, UNLIMITED, Amounts, Lease, lease_extra

_NO_COST = Decimal(0)
_LOCAL = "rsl_"  # ids of reservations served from a lease: this ledger's own count (they never leave the process)
_KEEP_EXPIRED = timedelta(days=1)  # how long a late settle of an expired reservation still counts
_MAX_TRIES = 6  # lease statements per reservation at most (contention near the limit); the last ones exact
_MAX_GROWTH = 64  # a key's leases grow to at most this many times ``multiple`` (see ``_multiple_for``)

_LeaseKey = tuple[str, tuple[Budget, ...]]


@attrs.define(eq=False)
class _Held:
    """A lease and the shape of its windows (for ``usage``)."""

    key: _LeaseKey
    lease: Lease
    rows: list[dict[str, Any]]
    idle: asyncio.TimerHandle | None = None  # closes it if no reservation came since ``idle_at`` (``linger``)
    idle_at: float = 0.0  # loop time its last reservation ended
    idle_since: datetime | None = None  # the same, on the ledger's clock (the close is written with it)
    multiple: int = 0  # the multiple it was sized with
    served: int = 0  # reservations it handed out


@attrs.frozen
class _Local:
    held: _Held
    need: Amounts
    expires_at: datetime


@attrs.frozen
class _Expired:
    key_id: str
    rows: list[dict[str, Any]]
    expires_at: datetime


class HoldingLedger(QuotaLedger, Protocol):
    """An exact ledger that can also hold a block for many requests (a lease) as one reservation."""

    async def hold(
        self,
        *,
        key_id: str,
        rows: list[dict[str, Any]],
        hold_id: str,
        tokens: int,
        cost_units: int,
        now: datetime,
        expires_at: datetime,
    ) -> tuple[bool, dict[str, tuple[int, int, int]]]:
        """Hold ``rows`` (from ``merge_windows``) as one reservation ``hold_id``, or nothing. Returns whether it
        fitted and each window's counters (tokens, requests, cost units) as they were before."""
        ...

    async def close_hold(self, hold_id: str, *, tokens: int, requests: int, cost_units: int, now: datetime) -> None:
        """Settle a hold of many requests: ``requests`` of them were used, for ``tokens`` and ``cost_units`` in
        all; the rest goes back. Idempotent like ``settle``."""
        ...

    async def trim_hold(self, hold_id: str, *, tokens: int, requests: int, cost_units: int) -> bool:
        """Give part of a pending hold back; False when it is no longer pending."""
        ...

    async def charge(self, key_id: str, rows: list[dict[str, Any]], *, tokens: int, cost_units: int) -> None:
        """Count a spend whose hold is already gone (its request and real tokens and cost)."""
        ...


class LeasedQuotaLedger(QuotaLedger):
    """Args:
    ledger: the exact ledger underneath (settles, sweeps and reads go through it).
    lease_seconds: how long a lease takes new reservations.
    multiple: a lease asks for this many requests' worth of the request that opens it (more, up to
        ``_MAX_GROWTH`` times, on a key whose leases run out of room before their time)...
    share: ...but never more than this share of the room left after that request.
    linger: seconds a lease whose requests all ended stays open for the next one (event-loop time: a
        scheduling delay, not a business time; 0 closes it at once). A client sending one request after
        another then costs no write per request either; the room goes back a moment later.
    """

    def __init__(
        self,
        ledger: HoldingLedger,
        *,
        lease_seconds: float = 1.0,
        multiple: int = 64,
        share: float = 0.5,
        linger: float = 0.05,
        ids: IdGenerator | None = None,
    ) -> None:
        self._ledger = ledger
        self._lease_time = timedelta(seconds=lease_seconds)
        self._multiple = multiple
        self._multiples: dict[_LeaseKey, int] = {}  # a key's grown multiple (see ``_multiple_for``)
        # a key's last lease ran out of room before this time (its ``closes_at``): grow the next one
        self._ran_out: dict[_LeaseKey, datetime] = {}
        self._share = share
        self._linger = linger
        self._closing: set[asyncio.Task[None]] = set()  # lingering leases being written
        self._writing: set[_Held] = set()  # retired leases whose closing write has not returned yet
        self._ids = ids if ids is not None else RandomIdGenerator()
        # PERF: a lease-served reservation is a key of ``_local`` and nothing else (never written, never sent);
        # a count names it uniquely for this ledger's life without the random bytes and clock of ``ids``.
        self._served = itertools.count(1)
        self._leases: dict[_LeaseKey, list[_Held]] = {}
        self._opening: dict[_LeaseKey, asyncio.Future[None]] = {}
        self._room: dict[_LeaseKey, Amounts] = {}  # the database's room as last seen, to size the next lease
        self._local: dict[str, _Local] = {}
        self._expired: dict[str, _Expired] = {}
        self._unfinished: list[_Held] = []  # leases whose closing write failed; retried by ``sweep``

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
        if not budgets:
            return await self._ledger.reserve(key_id=key_id, budgets=budgets, tokens=tokens, now=now, ttl=ttl)
        tokens = max(0, tokens)
        units = to_units(max(cost, _NO_COST))
        cost = from_units(units)
        rows = merge_windows(budgets, now, tokens, units)
        need = _counted(Amounts(tokens, 1, units), rows)  # what one request holds
        starts = tuple(r["s"] for r in rows)
        until = now + timedelta(seconds=ttl)
        key = (key_id, budgets)
        while (held := self._find(key, need, starts, now, until)) is None:
            opening = self._opening.get(key)
            if opening is not None:
                await asyncio.shield(opening)  # another request is taking a lease on this key: look again after
                continue
            opening = asyncio.get_running_loop().create_future()
            self._opening[key] = opening  # others asking meanwhile wait for this lease
            try:
                held = await self._take(key, rows, need, tokens, units, now, until)
            finally:
                del self._opening[key]
                opening.set_result(None)
            break
        held.lease.take(need)
        held.served += 1
        reservation = Reservation(
            id=f"{_LOCAL}{next(self._served)}",
            key_id=key_id,
            tokens=tokens,
            holds=holds_for(budgets, now, tokens, cost),
            expires_at=until,
            cost=cost,
        )
        self._local[reservation.id] = _Local(held, need, until)
        return reservation

    async def settle(self, reservation: Reservation, *, tokens: int, now: datetime, cost: Decimal = _NO_COST) -> None:
        local = self._local.pop(reservation.id, None)
        units = to_units(max(cost, _NO_COST))
        if local is None:
            await self._late(reservation, tokens=tokens, units=units, now=now, spent=True)
            return
        local.held.lease.settle(local.need, Amounts(max(0, tokens), 0, units))
        await self._close_if_done(local.held, local.need, now)

    async def release(self, reservation: Reservation, *, now: datetime) -> None:
        local = self._local.pop(reservation.id, None)
        if local is None:
            await self._late(reservation, tokens=0, units=0, now=now, spent=False)
            return
        local.held.lease.release(local.need)
        await self._close_if_done(local.held, local.need, now)

    async def sweep(self, now: datetime) -> int:
        expired = [rid for rid, local in self._local.items() if local.expires_at < now]
        for rid in expired:
            local = self._local.pop(rid)
            self._expired[rid] = _Expired(local.held.key[0], local.held.rows, local.expires_at)
            local.held.lease.release(local.need)
            await self._close_if_done(local.held, local.need, now)
        for held in self._unfinished[:]:
            self._unfinished.remove(held)
            await self._close(held, now)
        for rid in [rid for rid, e in self._expired.items() if e.expires_at + _KEEP_EXPIRED < now]:
            del self._expired[rid]
        return len(expired) + await self._ledger.sweep(now)

    async def usage(self, *, key_id: str, budgets: tuple[Budget, ...], now: datetime) -> tuple[WindowUse, ...]:
        """The database's counters less this process's unused lease room, so a key's use reads the same as
        without leases (another process's unused room shows as held). A lease whose closing write is still
        on its way counts as open: the database holds all of it until that write commits. (On PostgreSQL
        the write can commit a moment before it returns; a read in that moment reads low by the room.)"""
        uses = await self._ledger.usage(key_id=key_id, budgets=budgets, now=now)
        leases = [h for (k, _), held in self._leases.items() if k == key_id for h in held]
        leases += [h for h in (*self._writing, *self._unfinished) if h.key[0] == key_id]
        if not leases:
            return uses
        adjusted = []
        for budget, use in zip(budgets, uses, strict=True):
            start = budget.window.bounds(now)[0]
            tokens, requests, units = use.tokens, use.requests, to_units(use.cost)
            for held in leases:
                room = held.lease.room
                for row in held.rows:
                    if row["w"] == budget.window.name and row["s"] == start:
                        tokens -= room.tokens if row["ct"] else 0
                        requests -= room.requests if row["r"] else 0
                        units -= room.cost if row["cc"] else 0
            adjusted.append(WindowUse(tokens=tokens, requests=requests, cost=from_units(units)))
        return tuple(adjusted)

    async def close(self) -> None:
        """Write every lease's spend and give its room back (at shutdown, when nothing is in flight)."""
        for rid, local in list(self._local.items()):
            del self._local[rid]
            local.held.lease.release(local.need)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        for held in [h for group in self._leases.values() for h in group] + self._unfinished:
            # the database gone: the lease lapses at its expiry and a sweeper gives it back
            with contextlib.suppress(StorageError):
                await self._close(held, held.idle_since)
        self._leases.clear()
        self._unfinished.clear()

    # -- leases ----------------------------------------------------------------------------------------

    def _find(
        self, key: _LeaseKey, need: Amounts, starts: tuple[datetime, ...], now: datetime, until: datetime
    ) -> _Held | None:
        for held in reversed(self._leases.get(key, ())):  # the newest has the most room
            if held.lease.can_take(need, starts, now, until):
                return held
        return None

    async def _take(
        self,
        key: _LeaseKey,
        rows: list[dict[str, Any]],
        need: Amounts,
        tokens: int,
        units: int,
        now: datetime,
        until: datetime,
    ) -> _Held:
        """A new lease with room for ``need`` at least: sized on the room last seen, then on the database's own
        figures, down to the request alone."""
        budgets = key[1]
        room = self._room.get(key)
        multiple = self._multiple_for(key, now)
        trimmed = False
        tries = 0
        while True:
            tries += 1
            extra = lease_extra(need, room, multiple=multiple, share=self._share) if tries < _MAX_TRIES else NOTHING
            held = await self._hold(key, rows, need + extra, now, until, multiple)
            if isinstance(held, _Held):
                return held
            current = held
            room = _room_of(rows, current)
            self._room[key] = room
            if extra != NOTHING:
                continue  # sized on stale figures: again, on the fresh ones (down to the request alone)
            if trimmed or not await self._trim(key):
                raise exceeded(budgets, uses_of(budgets, current), tokens, now, from_units(units))
            trimmed = True  # this process's own unused room went back: one more try

    def _multiple_for(self, key: _LeaseKey, now: datetime) -> int:
        """The multiple of a new lease on ``key``: doubled (up to ``_MAX_GROWTH`` times ``multiple``) when one
        of its leases is still in its time but out of room. The traffic then outruns the leases, and every
        request in a burst waits for a lease statement: at 64 connections on PostgreSQL a reservation took
        6.6 ms at the median, a lease of 64 serving one wave of requests (docs/benchmarks.md, tenth pass).
        ``share`` still caps what a lease takes of the room left; ``_close`` halves the multiple again when
        a lease served less than a quarter of it. A lease that ran out and closed before the next request
        came counts too: one client sending request after another empties a lease within its time just the
        same, and without this every 64th request waited for two statements (close, then a new lease),
        which set the p99 at one connection on PostgreSQL (docs/benchmarks.md, fourteenth pass)."""
        multiple = self._multiples.get(key, self._multiple)
        ran_out = self._ran_out.pop(key, None)
        if (ran_out is not None and now < ran_out) or any(
            now < held.lease.closes_at and not held.lease.draining for held in self._leases.get(key, ())
        ):
            multiple = min(multiple * 2, self._multiple * _MAX_GROWTH)
            self._multiples[key] = multiple
        return multiple

    async def _hold(
        self,
        key: _LeaseKey,
        rows: list[dict[str, Any]],
        amounts: Amounts,
        now: datetime,
        until: datetime,
        multiple: int,
    ) -> _Held | dict[str, tuple[int, int, int]]:
        """The lease, or the counters that refused it."""
        key_id = key[0]
        block = merge_windows(key[1], now, amounts.tokens, amounts.cost, amounts.requests)
        lease = Lease(
            id=self._ids.new_id("lse_"),
            key_id=key_id,
            starts=tuple(r["s"] for r in rows),
            granted=_counted(amounts, rows),
            closes_at=now + self._lease_time,
            expires_at=until + self._lease_time,
        )
        # A dimension no window counts is never short.
        lease.room = _counted(lease.room, rows, UNLIMITED)
        fits, current = await self._ledger.hold(
            key_id=key_id,
            rows=block,
            hold_id=lease.id,
            tokens=amounts.tokens,
            cost_units=amounts.cost,
            now=now,
            expires_at=lease.expires_at,
        )
        if not fits:
            return current
        self._room[key] = _room_of(rows, current) - amounts
        held = _Held(key, lease, rows, multiple=multiple)
        self._leases.setdefault(key, []).append(held)
        return held

    async def _trim(self, key: _LeaseKey) -> bool:
        """Give the unused room of this process's leases on ``key`` back; True when any went back. That includes
        a lingering lease whose closing write is under way: its room is on its way back, so it is waited for
        (rather than a refusal while the database still counts it)."""
        gave = False
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
            gave = True
        for held in list(self._leases.get(key, ())):
            unused = _counted(held.lease.unused(), held.rows)
            held.lease.draining = True
            if unused == NOTHING:
                continue
            if await self._ledger.trim_hold(
                held.lease.id, tokens=unused.tokens, requests=unused.requests, cost_units=unused.cost
            ):
                held.lease.trimmed(unused)
                gave = True
        return gave

    async def _close_if_done(self, held: _Held, need: Amounts, now: datetime) -> None:
        """Nothing in flight: close it, or let it linger when it could serve another request like the last."""
        lease = held.lease
        if not lease.done():
            return
        in_time = now < lease.closes_at
        if in_time and not lease.draining and not need.fits_in(lease.room):
            self._ran_out[held.key] = lease.closes_at  # out of room within its time: the next lease grows
        elif self._linger > 0 and not lease.draining and in_time:
            loop = asyncio.get_running_loop()
            held.idle_since = now
            held.idle_at = loop.time()
            if held.idle is None:  # one timer per lease, not one per request: it looks again when it fires
                held.idle = loop.call_at(held.idle_at + self._linger, self._close_idle, held)
            return
        await self._close(held, now)

    def _close_idle(self, held: _Held) -> None:
        """The linger ended: if nothing came meanwhile, the lease takes no more and its write goes out."""
        held.idle = None
        if not held.lease.done():
            return  # busy again: its next idle moment arms the timer anew
        loop = asyncio.get_running_loop()
        if loop.time() < held.idle_at + self._linger:
            held.idle = loop.call_at(held.idle_at + self._linger, self._close_idle, held)
            return
        self._retire(held)
        self._writing.add(held)  # from now, not from when its task starts: until the write returns
        task = asyncio.get_running_loop().create_task(self._close_quietly(held))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close_quietly(self, held: _Held) -> None:
        # a failed write is kept in ``_unfinished`` for ``sweep``; nobody waits for this one
        with contextlib.suppress(StorageError):
            await self._close(held, held.idle_since)

    def _retire(self, held: _Held) -> None:
        """No new reservations from ``held``."""
        held.lease.draining = True
        if held.idle is not None:
            held.idle.cancel()
            held.idle = None
        group = self._leases.get(held.key)
        if group is not None and held in group:
            group.remove(held)
            if not group:
                del self._leases[held.key]

    async def _close(self, held: _Held, now: datetime | None) -> None:
        """Write the lease's spend and give the rest back; on a storage failure ``sweep`` tries again (until
        then the database holds the whole lease, which is never too little)."""
        self._retire(held)
        self._writing.add(held)
        grown = self._multiples.get(held.key)
        if grown is not None and held.served * 4 <= held.multiple:
            if grown // 2 <= self._multiple:
                del self._multiples[held.key]  # back to the configured size (and no entry kept per idle key)
            else:
                self._multiples[held.key] = grown // 2
        spent = held.lease.spent
        try:
            await self._ledger.close_hold(
                held.lease.id,
                tokens=spent.tokens,
                requests=spent.requests,
                cost_units=spent.cost,
                now=now if now is not None else held.lease.closes_at,
            )
        except StorageError:
            self._unfinished.append(held)
            raise
        finally:
            self._writing.discard(held)

    async def _late(self, reservation: Reservation, *, tokens: int, units: int, now: datetime, spent: bool) -> None:
        """A settle or release of a reservation this ledger no longer holds in memory."""
        if not reservation.id.startswith(_LOCAL):
            # not from a lease (no budgets): the exact ledger's own, idempotent
            if spent:
                await self._ledger.settle(reservation, tokens=tokens, now=now, cost=from_units(units))
            else:
                await self._ledger.release(reservation, now=now)
            return
        expired = self._expired.pop(reservation.id, None)
        if expired is not None and spent:
            # it outlived its hold, which went back with its lease: its real spend still counts
            await self._ledger.charge(expired.key_id, expired.rows, tokens=max(0, tokens), cost_units=units)


def _counted(amounts: Amounts, rows: list[dict[str, Any]], other: int = 0) -> Amounts:
    """``amounts`` in the dimensions some window counts; ``other`` in the rest."""
    return Amounts(
        amounts.tokens if any(r["ct"] for r in rows) else other,
        amounts.requests if any(r["r"] for r in rows) else other,
        amounts.cost if any(r["cc"] for r in rows) else other,
    )


def _room_of(rows: list[dict[str, Any]], current: dict[str, tuple[int, int, int]]) -> Amounts:
    """The room the database has for this key in these windows: the tightest window of each dimension."""
    tokens = requests = cost = UNLIMITED
    for row in rows:
        used_tokens, used_requests, used_cost = current.get(row["w"], (0, 0, 0))
        if row["tl"] is not None:
            tokens = min(tokens, row["tl"] - used_tokens)
        if row["rl"] is not None:
            requests = min(requests, row["rl"] - used_requests)
        if row["cl"] is not None:
            cost = min(cost, row["cl"] - used_cost)
    return Amounts(tokens, requests, cost)
