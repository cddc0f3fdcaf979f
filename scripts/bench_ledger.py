"""Benchmark the PostgreSQL quota ledger: reservations per second, and settle-plus-usage-row writes per
second, with one and with two OS processes, against a fresh database (created here and dropped after).

    python scripts/bench_ledger.py [--dsn postgresql://postgres@127.0.0.1:5432/postgres]
                                   [--ops 4000] [--concurrency 64] [--keys 100]

Each reservation holds against two windows (tokens per day, requests per month), as a typical plan does.
"spread" runs spread the load over ``--keys`` keys; "hot key" runs put every request on one key, the worst
case (every reservation serialises on that key's counter rows). "leased" runs use LeasedQuotaLedger (what
``apipod serve`` uses on PostgreSQL unless QUOTA_LEASE_SECONDS=0): a write per lease, not per reservation.
After each run the ledger is checked against what was settled (nothing pending, the counters equal the spend).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg

from apipod.adapters.leased_quota import LeasedQuotaLedger
from apipod.adapters.postgres import PgDatabase, PgQuotaLedger, PgUsageLog, migrate
from apipod.domain.chat import Usage
from apipod.domain.quota import Budget, Reservation, Window, WindowUnit
from apipod.domain.usage import UsageRecord

BUDGETS = (
    Budget(window=Window(WindowUnit.DAY), tokens=10**12),
    Budget(window=Window(WindowUnit.MONTH), requests=10**9),
)


async def _run(dsn: str, ops: int, concurrency: int, keys: int, tag: str, leased: bool) -> dict[str, float]:
    db = await PgDatabase.connect(dsn, min_size=min(concurrency, 20), max_size=min(concurrency, 20))
    exact = PgQuotaLedger(db)
    ledger: PgQuotaLedger | LeasedQuotaLedger = LeasedQuotaLedger(exact) if leased else exact
    usage_log = PgUsageLog(db, batch_size=500)
    await usage_log.start()
    gate = asyncio.Semaphore(concurrency)
    now = datetime.now(UTC)

    async def reserve(i: int) -> Reservation:
        async with gate:
            return await ledger.reserve(key_id=f"key_{i % keys}", budgets=BUDGETS, tokens=1200, now=now, ttl=600)

    async def settle(i: int, reservation: Reservation) -> None:
        async with gate:
            await ledger.settle(reservation, tokens=800, now=now)
            await usage_log.record(
                UsageRecord(
                    request_id=f"{tag}-{i}",
                    key_id=reservation.key_id,
                    user="bench",
                    requested_model="pro",
                    routed_model="mini",
                    upstream="mock/#0",
                    usage=Usage(input_tokens=500, output_tokens=300),
                    timestamp=datetime.now(UTC),
                )
            )

    t0 = time.perf_counter()
    reservations = await asyncio.gather(*(reserve(i) for i in range(ops)))
    t1 = time.perf_counter()
    await asyncio.gather(*(settle(i, r) for i, r in enumerate(reservations)))
    await usage_log.flush()
    t2 = time.perf_counter()
    if isinstance(ledger, LeasedQuotaLedger):
        await ledger.close()
    await usage_log.close()
    await db.close()
    return {"reserve_start": t0, "reserve_end": t1, "settle_end": t2}


def _worker(dsn: str, ops: int, concurrency: int, keys: int, tag: str, leased: bool, barrier: Any, out: Any) -> None:
    async def main() -> dict[str, float]:
        barrier.wait()
        return await _run(dsn, ops, concurrency, keys, tag, leased)

    out.put(asyncio.run(main()))


def measure(dsn: str, processes: int, ops: int, concurrency: int, keys: int, leased: bool) -> tuple[float, float]:
    """Aggregate (reservations/s, settle+usage/s) over all processes, by wall time."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    tag = uuid.uuid4().hex[:8]
    workers = [
        ctx.Process(target=_worker, args=(dsn, ops, concurrency, keys, f"{tag}-{n}", leased, barrier, out))
        for n in range(processes)
    ]
    for w in workers:
        w.start()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    # time.perf_counter is system-wide (CLOCK_MONOTONIC) on Linux, so the processes' marks compare.
    reserve_time = max(r["reserve_end"] for r in results) - min(r["reserve_start"] for r in results)
    settle_time = max(r["settle_end"] for r in results) - min(r["reserve_end"] for r in results)
    total = ops * processes
    return total / reserve_time, total / settle_time


async def _create(admin_dsn: str) -> tuple[str, str]:
    name = f"apipod_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = admin_dsn.rpartition("/")[0] + "/" + name
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    try:
        await migrate(pool)
    finally:
        await pool.close()
    return name, dsn


async def _reset(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE quota_windows, quota_reservations, usage_logs")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _check(dsn: str, expected: int) -> None:
    """Nothing left pending, and the counters hold exactly what was settled (800 tokens per request)."""
    conn = await asyncpg.connect(dsn)
    try:
        pending = await conn.fetchval("SELECT count(*) FROM quota_reservations WHERE state = 'pending'")
        tokens = await conn.fetchval("SELECT coalesce(sum(tokens), 0) FROM quota_windows WHERE window_name = 'day'")
        requests = await conn.fetchval(
            "SELECT coalesce(sum(requests), 0) FROM quota_windows WHERE window_name = 'month'"
        )
    finally:
        await conn.close()
    if (pending, tokens, requests) != (0, expected * 800, expected):
        raise SystemExit(f"ledger check failed: pending={pending} tokens={tokens} requests={requests}")


async def _drop(admin_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres", help="admin DSN")
    parser.add_argument("--ops", type=int, default=4000, help="reservations per process")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight per process")
    parser.add_argument("--keys", type=int, default=100, help="distinct keys in the spread runs")
    args = parser.parse_args()

    name, dsn = asyncio.run(_create(args.dsn))
    try:
        print(f"database {name}; {args.ops} ops per process, {args.concurrency} in flight per process")
        print(f"{'run':<28}{'reservations/s':>16}{'settle+usage/s':>16}")
        for label, keys, leased in (
            ("spread", args.keys, False),
            ("hot key", 1, False),
            ("spread, leased", args.keys, True),
            ("hot key, leased", 1, True),
        ):
            for processes in (1, 2):
                asyncio.run(_reset(dsn))
                reserve_rate, settle_rate = measure(dsn, processes, args.ops, args.concurrency, keys, leased)
                asyncio.run(_check(dsn, args.ops * processes))
                run = f"{label}, {processes} process{'es' if processes > 1 else ''}"
                print(f"{run:<28}{reserve_rate:>16,.0f}{settle_rate:>16,.0f}")
    finally:
        asyncio.run(_drop(args.dsn, name))


if __name__ == "__main__":
    main()
