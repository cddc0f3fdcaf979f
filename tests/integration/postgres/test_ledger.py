"""PgQuotaLedger beyond the shared contract: many sweepers, late settlement, mixed traffic without
deadlocks, and budgets sharing one window."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from apipod.adapters.postgres import PgDatabase, PgQuotaLedger
from apipod.domain.errors import QuotaExceededError
from apipod.domain.quota import Budget, Reservation
from tests.contracts.builders import DAY, HOUR, MONTH, NOW


async def test_concurrent_sweepers_release_each_expired_hold_once(pg: PgDatabase, pg_dsn: str) -> None:
    budgets = (Budget(window=DAY, tokens=10**9, requests=10**6),)
    ledger = PgQuotaLedger(pg)
    await asyncio.gather(
        *(ledger.reserve(key_id=f"key_{i % 7}", budgets=budgets, tokens=10, now=NOW, ttl=1) for i in range(300))
    )
    sweepers = [await PgDatabase.connect(pg_dsn, min_size=1, max_size=2) for _ in range(4)]
    try:
        counts = await asyncio.gather(
            *(PgQuotaLedger(db, sweep_batch=25).sweep(NOW + timedelta(seconds=5)) for db in sweepers)
        )
    finally:
        for db in sweepers:
            await db.close()

    assert sum(counts) == 300
    for i in range(7):
        (use,) = await ledger.usage(key_id=f"key_{i}", budgets=budgets, now=NOW)
        assert (use.tokens, use.requests) == (0, 0)


async def test_settling_a_swept_reservation_still_counts_its_real_spend(pg: PgDatabase) -> None:
    budgets = (Budget(window=DAY, tokens=1000), Budget(window=MONTH, requests=10))
    ledger = PgQuotaLedger(pg)
    late = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=500, now=NOW, ttl=1)
    assert await ledger.sweep(NOW + timedelta(seconds=2)) == 1

    await ledger.settle(late, tokens=120, now=NOW)
    await ledger.settle(late, tokens=120, now=NOW)

    day, month = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
    assert (day.tokens, month.requests) == (120, 1)


async def test_budgets_on_the_same_window_share_one_counter_and_the_tightest_limit(pg: PgDatabase) -> None:
    budgets = (Budget(window=DAY, tokens=1000), Budget(window=DAY, requests=2), Budget(window=DAY, tokens=500))
    ledger = PgQuotaLedger(pg)

    await ledger.reserve(key_id="key_1", budgets=budgets, tokens=300, now=NOW, ttl=60)
    with pytest.raises(QuotaExceededError):
        await ledger.reserve(key_id="key_1", budgets=budgets, tokens=300, now=NOW, ttl=60)
    reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=200, now=NOW, ttl=60)
    await ledger.settle(reservation, tokens=50, now=NOW)

    uses = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
    assert {(u.tokens, u.requests) for u in uses} == {(350, 2)}


async def test_mixed_traffic_on_many_windows_never_deadlocks_and_adds_up(pg: PgDatabase) -> None:
    budgets = (
        Budget(window=MONTH, tokens=10**9),
        Budget(window=DAY, requests=10**6),
        Budget(window=HOUR, tokens=10**9, requests=10**6),
    )
    ledger = PgQuotaLedger(pg)
    rng = random.Random(7)
    plan = [(rng.choice(["settle", "release", "settle_twice"]), rng.randint(0, 900)) for _ in range(300)]

    async def one(action: str, spent: int) -> tuple[int, int]:
        reservation: Reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=1000, now=NOW, ttl=60)
        await asyncio.sleep(0)
        if action == "release":
            await ledger.release(reservation, now=NOW)
            return 0, 0
        await ledger.settle(reservation, tokens=spent, now=NOW)
        if action == "settle_twice":
            await asyncio.gather(
                ledger.settle(reservation, tokens=spent, now=NOW), ledger.release(reservation, now=NOW)
            )
        return spent, 1

    outcomes = await asyncio.gather(*(one(a, s) for a, s in plan))

    tokens = sum(t for t, _ in outcomes)
    requests = sum(r for _, r in outcomes)
    month, day, hour = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
    assert (month.tokens, day.requests, hour.tokens, hour.requests) == (tokens, requests, tokens, requests)
    assert month.requests == 0  # a tokens-only window counts no requests
    assert day.tokens == 0  # a requests-only window counts no tokens


async def test_sweep_prunes_counters_of_windows_long_over(pg: PgDatabase) -> None:
    budgets = (Budget(window=HOUR, tokens=100),)
    ledger = PgQuotaLedger(pg)
    reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=10, now=NOW, ttl=60)
    await ledger.settle(reservation, tokens=5, now=NOW)

    await ledger.sweep(NOW + timedelta(days=3))

    assert await pg.pool.fetchval("SELECT count(*) FROM quota_windows") == 0
    assert await pg.pool.fetchval("SELECT count(*) FROM quota_reservations") == 0
