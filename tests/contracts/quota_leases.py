"""Budget leases over every ledger that can hold them (adapters/leased_quota.py): a hot key costs a write per
lease, not per request, and the database's counters stay exact. Subclass and provide ``exact`` (an empty
HoldingLedger on a fresh database) and ``pending_holds`` (how many holds the database has pending).

The QuotaLedgerContract runs against LeasedQuotaLedger too: leases change how often the database is written,
not what a caller sees."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest

from apipod.adapters.leased_quota import HoldingLedger, LeasedQuotaLedger
from apipod.domain.errors import QuotaExceededError
from apipod.domain.quota import Budget, Reservation
from tests.contracts.builders import DAY, MONTH, NOW

BUDGETS = (Budget(window=DAY, tokens=10_000_000), Budget(window=MONTH, requests=100_000))

PendingHolds = Callable[[], Awaitable[int]]


class QuotaLeaseContract:
    @pytest.fixture
    def exact(self) -> HoldingLedger:
        raise NotImplementedError("subclasses provide an empty HoldingLedger")

    @pytest.fixture
    def pending_holds(self) -> PendingHolds:
        raise NotImplementedError("subclasses count the database's pending holds")

    async def test_a_burst_on_one_key_writes_a_few_leases_and_settles_exactly(
        self, exact: HoldingLedger, pending_holds: PendingHolds
    ) -> None:
        ledger = LeasedQuotaLedger(exact, multiple=64, linger=0)
        gate = asyncio.Event()
        held: list[Reservation] = []

        async def one(i: int) -> None:
            reservation = await ledger.reserve(key_id="hot", budgets=BUDGETS, tokens=1000, now=NOW, ttl=60)
            held.append(reservation)
            await gate.wait()  # all 200 in flight at once, as under load
            await ledger.settle(reservation, tokens=i, now=NOW)

        burst = [asyncio.create_task(one(i)) for i in range(200)]
        async with asyncio.timeout(10):
            while len(held) < 200:
                await asyncio.sleep(0.01)
        in_flight = await pending_holds()
        gate.set()
        await asyncio.gather(*burst)

        assert 1 <= in_flight <= 8  # 200 reservations from a handful of leases, not 200 holds
        assert await pending_holds() == 0  # every lease closed once its requests ended
        day, month = await exact.usage(key_id="hot", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (sum(range(200)), 200)  # the database holds only the real spend

    async def test_leases_grow_while_traffic_outruns_them_and_shrink_back(
        self, exact: HoldingLedger, pending_holds: PendingHolds
    ) -> None:
        ledger = LeasedQuotaLedger(exact, multiple=4, linger=0)
        held = [await ledger.reserve(key_id="hot", budgets=BUDGETS, tokens=1000, now=NOW, ttl=60) for _ in range(60)]
        # leases of 4, 8, 16 and 32 requests, not fifteen of 4: each ran out of room within its time
        assert await pending_holds() == 4
        for i, reservation in enumerate(held):
            await ledger.settle(reservation, tokens=i, now=NOW)
        assert await pending_holds() == 0
        day, month = await exact.usage(key_id="hot", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (sum(range(60)), 60)

        # one request at a time: each lease serves one, under a quarter of its size, so the size halves back
        later = NOW + timedelta(seconds=5)
        sizes = []
        for _ in range(6):
            reservation = await ledger.reserve(key_id="hot", budgets=BUDGETS, tokens=1000, now=later, ttl=60)
            sizes.append(_granted_requests(ledger, reservation))
            await ledger.settle(reservation, tokens=1, now=later)
        assert sizes == [32, 16, 8, 4, 4, 4]

    async def test_leases_grow_for_one_client_sending_request_after_another(
        self, exact: HoldingLedger, pending_holds: PendingHolds
    ) -> None:
        """Each lease runs out of room within its time and closes before the next request comes (nothing in
        flight): the next one is still taken larger, so the statements stay rare at one connection too."""
        ledger = LeasedQuotaLedger(exact, multiple=4, linger=10.0)
        sizes = []
        for i in range(60):
            reservation = await ledger.reserve(key_id="hot", budgets=BUDGETS, tokens=1000, now=NOW, ttl=60)
            sizes.append(_granted_requests(ledger, reservation))
            await ledger.settle(reservation, tokens=i, now=NOW)
        assert sorted(set(sizes)) == [4, 8, 16, 32]  # four leases for sixty requests, not fifteen
        await ledger.close()
        assert await pending_holds() == 0
        day, month = await exact.usage(key_id="hot", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (sum(range(60)), 60)

    async def test_one_process_admits_exactly_the_budget_giving_its_unused_room_back(
        self, exact: HoldingLedger, pending_holds: PendingHolds
    ) -> None:
        budgets = (Budget(window=DAY, tokens=10_000, requests=100),)
        ledger = LeasedQuotaLedger(exact, multiple=64, share=1.0, linger=0)
        small = await ledger.reserve(key_id="k", budgets=budgets, tokens=1000, now=NOW, ttl=60)
        # the lease took far more than 1000 tokens; a 9000-token request fits only if that room goes back
        (use,) = await exact.usage(key_id="k", budgets=budgets, now=NOW)
        assert use.tokens > 1000

        big = await ledger.reserve(key_id="k", budgets=budgets, tokens=9000, now=NOW, ttl=60)

        with pytest.raises(QuotaExceededError) as full:
            await ledger.reserve(key_id="k", budgets=budgets, tokens=1, now=NOW, ttl=60)
        assert full.value.window == "day"
        await ledger.settle(small, tokens=700, now=NOW)
        await ledger.settle(big, tokens=8000, now=NOW)
        (use,) = await exact.usage(key_id="k", budgets=budgets, now=NOW)
        assert (use.tokens, use.requests) == (8700, 2)
        assert await pending_holds() == 0

    async def test_a_lease_stops_taking_reservations_after_its_time(
        self, exact: HoldingLedger, pending_holds: PendingHolds
    ) -> None:
        ledger = LeasedQuotaLedger(exact, lease_seconds=1.0, linger=0)
        first = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=10, now=NOW, ttl=60)
        same = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=10, now=NOW + timedelta(seconds=0.5), ttl=60)
        later = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=10, now=NOW + timedelta(seconds=1), ttl=60)

        assert await pending_holds() == 2
        for reservation in (first, same, later):
            await ledger.settle(reservation, tokens=5, now=NOW + timedelta(seconds=2))
        day, month = await exact.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (15, 3)

    async def test_an_expired_reservation_goes_back_and_a_late_settle_still_counts(self, exact: HoldingLedger) -> None:
        ledger = LeasedQuotaLedger(exact, linger=0)
        stuck = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=500, now=NOW, ttl=10)

        assert await ledger.sweep(NOW + timedelta(seconds=11)) == 1
        day, month = await exact.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (0, 0)

        await ledger.settle(stuck, tokens=321, now=NOW + timedelta(seconds=20))
        await ledger.settle(stuck, tokens=321, now=NOW + timedelta(seconds=20))  # idempotent
        day, month = await exact.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (321, 1)

    async def test_a_lease_the_process_lost_is_given_back_by_the_database_sweep(
        self, exact: HoldingLedger, pending_holds: PendingHolds
    ) -> None:
        """A process that dies with a lease open: its hold lapses like any reservation's."""
        crashed = LeasedQuotaLedger(exact, lease_seconds=1.0)
        await crashed.reserve(key_id="k", budgets=BUDGETS, tokens=500, now=NOW, ttl=10)

        assert await exact.sweep(NOW + timedelta(seconds=12)) == 1
        day, month = await exact.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (0, 0)
        assert await pending_holds() == 0

    async def test_money_is_leased_and_settled_exactly(self, exact: HoldingLedger) -> None:
        budgets = (Budget(window=DAY, cost=Decimal("1.00")),)
        ledger = LeasedQuotaLedger(exact)

        async def one() -> Reservation | None:
            try:
                return await ledger.reserve(
                    key_id="k", budgets=budgets, tokens=1, now=NOW, ttl=60, cost=Decimal("0.03")
                )
            except QuotaExceededError:
                return None

        admitted = [r for r in await asyncio.gather(*(one() for _ in range(50))) if r is not None]
        assert len(admitted) == 33  # 33 x 0.03 = 0.99
        for reservation in admitted:
            await ledger.settle(reservation, tokens=1, now=NOW, cost=Decimal("0.0123456789"))
        (use,) = await exact.usage(key_id="k", budgets=budgets, now=NOW)
        assert use.cost == Decimal("0.0123456789") * 33

    async def test_a_lease_lingers_for_the_next_request_then_closes(
        self, exact: HoldingLedger, pending_holds: PendingHolds
    ) -> None:
        """One request after another (a single client): one lease serves them all, then closes by itself."""
        ledger = LeasedQuotaLedger(exact, linger=0.2)
        for i in range(5):
            reservation = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=100, now=NOW, ttl=60)
            await ledger.settle(reservation, tokens=10 + i, now=NOW)
            assert await pending_holds() == 1  # the same lease, still open
        day, month = await ledger.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (60, 5)  # what this process sees: the spend, not the lease

        async with asyncio.timeout(5):
            while await pending_holds():
                await asyncio.sleep(0.05)
        day, month = await exact.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (60, 5)  # written when it closed
        await ledger.close()

    async def test_close_writes_a_lingering_lease(self, exact: HoldingLedger, pending_holds: PendingHolds) -> None:
        ledger = LeasedQuotaLedger(exact, linger=60)
        reservation = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=100, now=NOW, ttl=60)
        await ledger.settle(reservation, tokens=42, now=NOW)
        assert await pending_holds() == 1

        await ledger.close()

        assert await pending_holds() == 0
        day, month = await exact.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (42, 1)

    async def test_a_lingering_lease_goes_back_before_this_process_refuses(self, exact: HoldingLedger) -> None:
        budgets = (Budget(window=DAY, tokens=10_000),)
        ledger = LeasedQuotaLedger(exact, linger=60, share=1.0)
        first = await ledger.reserve(key_id="k", budgets=budgets, tokens=1000, now=NOW, ttl=60)
        await ledger.settle(first, tokens=1000, now=NOW)  # its lease lingers with the rest of the room

        big = await ledger.reserve(key_id="k", budgets=budgets, tokens=9000, now=NOW, ttl=60)

        await ledger.settle(big, tokens=9000, now=NOW)
        await ledger.close()
        (use,) = await exact.usage(key_id="k", budgets=budgets, now=NOW)
        assert use.tokens == 10_000

    async def test_a_lease_whose_closing_write_is_under_way_is_waited_for_before_a_refusal(
        self, exact: HoldingLedger
    ) -> None:
        """The linger ended and the lease's closing write is still going (a slow database): a request that needs
        that room waits for the write instead of being refused."""
        budgets = (Budget(window=DAY, tokens=10_000),)
        ledger, written = await _closing_slowly(exact, budgets, spent=1000)
        asyncio.get_running_loop().call_later(0.05, written.set)

        big = await ledger.reserve(key_id="k", budgets=budgets, tokens=9000, now=NOW, ttl=60)

        await ledger.settle(big, tokens=9000, now=NOW)
        await ledger.close()
        (use,) = await exact.usage(key_id="k", budgets=budgets, now=NOW)
        assert use.tokens == 10_000

    async def test_a_lease_whose_closing_write_is_under_way_still_reads_as_its_spend(
        self, exact: HoldingLedger
    ) -> None:
        """Until the closing write commits the database holds the whole lease; the key's use reads its spend."""
        budgets = (Budget(window=DAY, tokens=10_000),)
        ledger, written = await _closing_slowly(exact, budgets, spent=700)

        (while_writing,) = await ledger.usage(key_id="k", budgets=budgets, now=NOW)
        written.set()
        await ledger.close()
        (after,) = await ledger.usage(key_id="k", budgets=budgets, now=NOW)

        assert (while_writing.tokens, after.tokens) == (700, 700)

    async def test_close_gives_every_lease_back(self, exact: HoldingLedger, pending_holds: PendingHolds) -> None:
        ledger = LeasedQuotaLedger(exact)
        await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=100, now=NOW, ttl=60)

        await ledger.close()

        day, month = await exact.usage(key_id="k", budgets=BUDGETS, now=NOW)
        assert (day.tokens, month.requests) == (0, 0)
        assert await pending_holds() == 0

    async def test_two_ledgers_on_one_database_never_overspend(self, exact: HoldingLedger) -> None:
        """Two processes' ledgers (one database): leases are debited before they are spent."""
        budgets = (Budget(window=DAY, requests=50), Budget(window=MONTH, tokens=10**9))
        ledgers = [LeasedQuotaLedger(exact), LeasedQuotaLedger(exact)]

        async def one(ledger: LeasedQuotaLedger, i: int) -> int:
            try:
                reservation = await ledger.reserve(key_id="k", budgets=budgets, tokens=600, now=NOW, ttl=60)
            except QuotaExceededError:
                return 0
            await asyncio.sleep(0)
            await ledger.settle(reservation, tokens=i, now=NOW)
            return 1

        admitted = sum(await asyncio.gather(*(one(ledgers[i % 2], i + 1) for i in range(120))))
        for ledger in ledgers:
            await ledger.close()
        day, _ = await exact.usage(key_id="k", budgets=budgets, now=NOW)
        assert 45 <= admitted <= 50
        assert day.requests == admitted


async def _closing_slowly(
    exact: HoldingLedger, budgets: tuple[Budget, ...], *, spent: int
) -> tuple[LeasedQuotaLedger, asyncio.Event]:
    """A leased ledger whose one lease (``spent`` of its first 1,000 tokens used) lingered, was retired, and
    whose closing write now waits on the database until the returned event is set."""
    written = asyncio.Event()
    ledger = LeasedQuotaLedger(cast(HoldingLedger, _SlowClose(exact, written)), linger=0.01, share=1.0)
    first = await ledger.reserve(key_id="k", budgets=budgets, tokens=1000, now=NOW, ttl=60)
    await ledger.settle(first, tokens=spent, now=NOW)  # its lease lingers with the rest of the room
    await asyncio.sleep(0.05)  # the linger ended: the lease is retired, its closing write waits on the database
    return ledger, written


class _SlowClose:
    """A HoldingLedger whose lease closing writes wait for ``written`` (a slow or busy database)."""

    def __init__(self, exact: HoldingLedger, written: asyncio.Event) -> None:
        self._exact = exact
        self._written = written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._exact, name)

    async def close_hold(self, hold_id: str, **amounts: Any) -> None:
        await self._written.wait()
        await self._exact.close_hold(hold_id, **amounts)


def _granted_requests(ledger: LeasedQuotaLedger, reservation: Reservation) -> int:
    """How many requests the lease that served ``reservation`` was taken for."""
    local = ledger._local[reservation.id]  # the size is not visible from outside
    return local.held.lease.granted.requests
