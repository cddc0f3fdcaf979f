"""The issue's "done when": a money budget stops a key at its limit exactly, with two processes on one
PostgreSQL. Two OS processes hammer one key through PgQuotaLedger the way the chat path does: hold the
estimate priced from the catalog (ReserveQuota's rule), then settle the real cost of the routed model
(the chat pipeline's rule) and write the usage row with that cost.

The worker half runs as ``python -m tests.integration.postgres.test_money_budget_two_processes DSN KEY N
SETTLE`` from the repository root; it prints ``ready``, waits for a line on stdin, then one JSON line.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from apipod.adapters.postgres import PgDatabase, PgQuotaLedger, PgUsageLog
from apipod.domain.catalog import ModelPrices
from apipod.domain.chat import Usage
from apipod.domain.errors import QuotaExceededError
from apipod.domain.pricing import estimate_cost, usage_cost
from apipod.domain.quota import Budget, Window, WindowUnit
from apipod.domain.usage import UsageRecord

ROOT = Path(__file__).resolve().parents[3]
AT = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # one instant for every process: the same day window
LIMIT = Decimal("2.52")
BUDGETS = (Budget(window=Window(WindowUnit.DAY), cost=LIMIT),)
# Two candidate models: the hold prices input and output at the dearer of each (here both from "big").
CANDIDATES = (
    ModelPrices(input=Decimal("3.00"), output=Decimal("15.00"), cache_read=Decimal("0.30")),
    ModelPrices(input=Decimal("0.15"), output=Decimal("0.60")),
)
ROUTED = CANDIDATES[0]
INPUT, OUTPUT = 1000, 500
# A request costs 1000 x 3.00 / 1e6 + 500 x 15.00 / 1e6 = 0.0105: the limit is exactly 240 of them.
EXACT = Usage(input_tokens=INPUT, output_tokens=OUTPUT)
# Cheaper than the hold: 200 of the 1000 input tokens were cache reads at 0.30.
CHEAPER = Usage(input_tokens=INPUT, output_tokens=OUTPUT, cached_input_tokens=200)


async def hammer(db: PgDatabase, key_id: str, n: int, settle: str, worker: str) -> dict[str, object]:
    ledger = PgQuotaLedger(db)
    usage_log = PgUsageLog(db, batch_size=50)
    await usage_log.start()
    spent_usage = EXACT if settle == "exact" else CHEAPER

    async def one(index: int) -> Decimal | None:
        hold = estimate_cost(INPUT, OUTPUT, CANDIDATES)
        try:
            reservation = await ledger.reserve(
                key_id=key_id, budgets=BUDGETS, tokens=INPUT + OUTPUT, now=AT, ttl=60, cost=hold
            )
        except QuotaExceededError:
            return None
        cost = usage_cost(spent_usage, ROUTED)
        await ledger.settle(reservation, tokens=spent_usage.total_tokens, now=AT, cost=cost)
        await usage_log.record(
            UsageRecord(
                request_id=f"{worker}-{index}",
                key_id=key_id,
                user="race",
                requested_model="pro",
                routed_model="big",
                upstream="mock/#0",
                usage=spent_usage,
                timestamp=AT,
                plan="metered",
                cost=cost,
            )
        )
        return cost

    outcomes = await asyncio.gather(*(one(i) for i in range(n)))
    await usage_log.close()
    admitted = [o for o in outcomes if o is not None]
    return {"admitted": len(admitted), "refused": n - len(admitted), "cost": str(sum(admitted, Decimal(0)))}


async def worker_main(dsn: str, key_id: str, n: int, settle: str) -> None:
    db = await PgDatabase.connect(dsn, min_size=5, max_size=10)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        result = await hammer(db, key_id, n, settle, worker=f"{settle}-{os.getpid()}")
        print(orjson.dumps(result).decode(), flush=True)
    finally:
        await db.close()


# -- the test half ------------------------------------------------------------------------------------


def spawn(dsn: str, key_id: str, n: int, settle: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.postgres.test_money_budget_two_processes",
            dsn,
            key_id,
            str(n),
            settle,
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


async def read_line(proc: subprocess.Popen[bytes], timeout: float = 120.0) -> bytes:
    assert proc.stdout is not None
    return await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)


async def race(dsn: str, key_id: str, settle: str) -> list[dict[str, Any]]:
    workers = [spawn(dsn, key_id, 200, settle) for _ in range(2)]
    for proc in workers:
        assert await read_line(proc) == b"ready\n"
    for proc in workers:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
    results = [orjson.loads(await read_line(proc)) for proc in workers]
    for proc in workers:
        assert proc.wait(30) == 0
    return results


async def test_two_processes_spend_a_money_budget_to_its_limit_exactly(pg: PgDatabase, pg_dsn: str) -> None:
    assert estimate_cost(INPUT, OUTPUT, CANDIDATES) == usage_cost(EXACT, ROUTED) == Decimal("0.0105")

    results = await race(pg_dsn, "key_money", "exact")

    assert sum(r["admitted"] for r in results) == 240
    assert sum(r["refused"] for r in results) == 160
    assert all(r["admitted"] for r in results), results  # both really raced
    assert sum(Decimal(str(r["cost"])) for r in results) == LIMIT
    (use,) = await PgQuotaLedger(pg).usage(key_id="key_money", budgets=BUDGETS, now=AT)
    assert (use.cost, use.requests) == (LIMIT, 0)
    rows = await pg.pool.fetchrow("SELECT count(*) AS n, sum(cost) AS cost FROM usage_logs WHERE key_id = 'key_money'")
    assert (rows["n"], rows["cost"]) == (240, LIMIT)
    states = await pg.pool.fetch("SELECT state, count(*) AS n FROM quota_reservations GROUP BY state")
    assert {r["state"]: r["n"] for r in states} == {"settled": 240}


async def test_when_requests_cost_less_than_their_hold_the_spend_still_never_passes_the_limit(
    pg: PgDatabase, pg_dsn: str
) -> None:
    real = usage_cost(CHEAPER, ROUTED)
    assert real < estimate_cost(INPUT, OUTPUT, CANDIDATES)

    results = await race(pg_dsn, "key_cheaper", "cheaper")

    admitted = sum(r["admitted"] for r in results)
    spent = sum(Decimal(str(r["cost"])) for r in results)
    assert spent == admitted * real
    assert spent <= LIMIT
    assert admitted >= 240  # at least as many as the holds' price allows (concurrent holds refuse some more)
    (use,) = await PgQuotaLedger(pg).usage(key_id="key_cheaper", budgets=BUDGETS, now=AT)
    assert use.cost == spent


if __name__ == "__main__":
    asyncio.run(worker_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
