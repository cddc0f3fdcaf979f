"""Budget leases on PostgreSQL: a hot key costs a write per lease, not per request, and the ledger stays exact
(the contract suite runs against PgLeasedQuotaLedger too, in test_contracts.py)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import orjson
import pytest

from apipod.adapters.postgres import PgDatabase, PgLeasedQuotaLedger, PgQuotaLedger
from apipod.domain.errors import QuotaExceededError
from apipod.domain.quota import Budget, Reservation
from tests.contracts.builders import DAY, MONTH, NOW
from tests.integration.postgres.ledger_worker import AT, RACE_BUDGETS
from tests.integration.postgres.test_ledger_processes import read_line, spawn, start_together

BUDGETS = (Budget(window=DAY, tokens=10_000_000), Budget(window=MONTH, requests=100_000))


async def rows(pg: PgDatabase) -> dict[str, int]:
    states = await pg.pool.fetch("SELECT state, count(*) AS n FROM quota_reservations GROUP BY state")
    return {r["state"]: r["n"] for r in states}


async def test_a_burst_on_one_key_writes_a_few_leases_and_settles_exactly(pg: PgDatabase) -> None:
    ledger = PgLeasedQuotaLedger(PgQuotaLedger(pg), multiple=64)
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
    in_flight = await pg.pool.fetchval("SELECT count(*) FROM quota_reservations WHERE state = 'pending'")
    gate.set()
    await asyncio.gather(*burst)

    assert in_flight <= 8  # 200 reservations from a handful of leases, not 200 rows
    assert set(await rows(pg)) == {"settled"}  # every lease closed once its requests ended
    day, month = await PgQuotaLedger(pg).usage(key_id="hot", budgets=BUDGETS, now=NOW)
    assert (day.tokens, month.requests) == (sum(range(200)), 200)  # the database holds only the real spend


async def test_one_process_admits_exactly_the_budget_giving_its_unused_room_back(pg: PgDatabase) -> None:
    budgets = (Budget(window=DAY, tokens=10_000, requests=100),)
    ledger = PgLeasedQuotaLedger(PgQuotaLedger(pg), multiple=64, share=1.0)
    small = await ledger.reserve(key_id="k", budgets=budgets, tokens=1000, now=NOW, ttl=60)
    # the lease took far more than 1000 tokens; a 9000-token request fits only if that room goes back
    assert await pg.pool.fetchval("SELECT tokens FROM quota_windows WHERE key_id = 'k'") > 1000

    big = await ledger.reserve(key_id="k", budgets=budgets, tokens=9000, now=NOW, ttl=60)

    with pytest.raises(QuotaExceededError) as full:
        await ledger.reserve(key_id="k", budgets=budgets, tokens=1, now=NOW, ttl=60)
    assert full.value.window == "day"
    await ledger.settle(small, tokens=700, now=NOW)
    await ledger.settle(big, tokens=8000, now=NOW)
    (use,) = await PgQuotaLedger(pg).usage(key_id="k", budgets=budgets, now=NOW)
    assert (use.tokens, use.requests) == (8700, 2)
    assert set(await rows(pg)) == {"settled"}


async def test_a_lease_stops_taking_reservations_after_its_time(pg: PgDatabase) -> None:
    ledger = PgLeasedQuotaLedger(PgQuotaLedger(pg), lease_seconds=1.0)
    first = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=10, now=NOW, ttl=60)
    same = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=10, now=NOW + timedelta(seconds=0.5), ttl=60)
    later = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=10, now=NOW + timedelta(seconds=1), ttl=60)

    assert await pg.pool.fetchval("SELECT count(*) FROM quota_reservations") == 2
    for reservation in (first, same, later):
        await ledger.settle(reservation, tokens=5, now=NOW + timedelta(seconds=2))
    day, month = await PgQuotaLedger(pg).usage(key_id="k", budgets=BUDGETS, now=NOW)
    assert (day.tokens, month.requests) == (15, 3)


async def test_an_expired_reservation_goes_back_and_a_late_settle_still_counts(pg: PgDatabase) -> None:
    ledger = PgLeasedQuotaLedger(PgQuotaLedger(pg))
    stuck = await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=500, now=NOW, ttl=10)

    assert await ledger.sweep(NOW + timedelta(seconds=11)) == 1
    day, month = await PgQuotaLedger(pg).usage(key_id="k", budgets=BUDGETS, now=NOW)
    assert (day.tokens, month.requests) == (0, 0)

    await ledger.settle(stuck, tokens=321, now=NOW + timedelta(seconds=20))
    await ledger.settle(stuck, tokens=321, now=NOW + timedelta(seconds=20))  # idempotent
    day, month = await PgQuotaLedger(pg).usage(key_id="k", budgets=BUDGETS, now=NOW)
    assert (day.tokens, month.requests) == (321, 1)


async def test_money_is_leased_and_settled_exactly(pg: PgDatabase) -> None:
    budgets = (Budget(window=DAY, cost=Decimal("1.00")),)
    ledger = PgLeasedQuotaLedger(PgQuotaLedger(pg))

    async def one() -> Reservation | None:
        try:
            return await ledger.reserve(key_id="k", budgets=budgets, tokens=1, now=NOW, ttl=60, cost=Decimal("0.03"))
        except QuotaExceededError:
            return None

    admitted = [r for r in await asyncio.gather(*(one() for _ in range(50))) if r is not None]
    assert len(admitted) == 33  # 33 x 0.03 = 0.99
    for reservation in admitted:
        await ledger.settle(reservation, tokens=1, now=NOW, cost=Decimal("0.0123456789"))
    (use,) = await PgQuotaLedger(pg).usage(key_id="k", budgets=budgets, now=NOW)
    assert use.cost == Decimal("0.0123456789") * 33


async def test_close_gives_every_lease_back(pg: PgDatabase) -> None:
    ledger = PgLeasedQuotaLedger(PgQuotaLedger(pg))
    await ledger.reserve(key_id="k", budgets=BUDGETS, tokens=100, now=NOW, ttl=60)

    await ledger.close()

    day, month = await PgQuotaLedger(pg).usage(key_id="k", budgets=BUDGETS, now=NOW)
    assert (day.tokens, month.requests) == (0, 0)
    assert await pg.pool.fetchval("SELECT count(*) FROM quota_reservations WHERE state = 'pending'") == 0


async def test_two_processes_with_leases_never_overspend_and_the_ledger_equals_the_usage_rows(
    pg: PgDatabase, pg_dsn: str
) -> None:
    workers = [spawn("race-leased", pg_dsn, "key_lease", 200) for _ in range(2)]
    await start_together(workers)

    results = [orjson.loads(await read_line(w, timeout=120)) for w in workers]
    for worker in workers:
        assert worker.wait(30) == 0

    admitted = sum(r["admitted"] for r in results)
    assert admitted <= 50  # never more than the budget
    assert admitted >= 45, results  # and room held by the other process's leases costs little
    settled_tokens = sum(r["tokens"] for r in results)
    day, month = await PgQuotaLedger(pg).usage(key_id="key_lease", budgets=RACE_BUDGETS, now=AT)
    assert (day.requests, month.tokens) == (admitted, settled_tokens)
    usage = await pg.pool.fetchrow(
        "SELECT count(*) AS n, sum(token_count) AS tokens FROM usage_logs WHERE key_id = 'key_lease'"
    )
    assert (usage["n"], usage["tokens"]) == (admitted, settled_tokens)
    assert set(await rows(pg)) == {"settled"}
