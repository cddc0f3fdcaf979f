"""A separate OS process hitting the ledger, for the multi-process tests.

Run as ``python -m tests.integration.postgres.ledger_worker MODE DSN KEY [N]`` from the repository root.
It prints ``ready`` once connected and waits for a line on stdin before starting, so two workers can be
released at the same moment.

Modes:
    race N: N concurrent reserves (the test's budget), each admitted one settled with a deterministic
        token count and recorded as a usage row; prints one JSON line with what happened.
    race-leased N: the same through LeasedQuotaLedger (budget leases), closed at the end.
    hold N: N reserves with a short TTL, prints ``held``, then waits to be killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import orjson

from apipod.adapters.leased_quota import LeasedQuotaLedger
from apipod.adapters.postgres import PgDatabase, PgQuotaLedger, PgUsageLog
from apipod.domain.chat import Usage
from apipod.domain.errors import QuotaExceededError
from apipod.domain.quota import Budget, Window, WindowUnit
from apipod.domain.usage import UsageRecord

RACE_BUDGETS = (
    Budget(window=Window(WindowUnit.DAY), requests=50),
    Budget(window=Window(WindowUnit.MONTH), tokens=10**9),
)
HOLD_BUDGETS = (Budget(window=Window(WindowUnit.DAY), tokens=10**6, requests=1000),)
HOLD_TTL = 2.0
# The one instant every process and the test use: mid-day, mid-month, so the day and month windows are the
# same for all of them whenever the suite runs (with each reading the wall clock, a run across midnight UTC
# saw the workers' day and the test's differ).
AT = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def spent_for(worker: str, index: int) -> int:
    return 1 + (index * 37 + len(worker)) % 500


async def race(db: PgDatabase, key_id: str, n: int, worker: str, *, leased: bool = False) -> dict[str, int]:
    ledger: PgQuotaLedger | LeasedQuotaLedger = PgQuotaLedger(db)
    if leased:
        ledger = LeasedQuotaLedger(PgQuotaLedger(db))
    usage_log = PgUsageLog(db, batch_size=50)
    await usage_log.start()
    now = AT

    async def one(index: int) -> int | None:
        try:
            reservation = await ledger.reserve(key_id=key_id, budgets=RACE_BUDGETS, tokens=600, now=now, ttl=60)
        except QuotaExceededError:
            return None
        spent = spent_for(worker, index)
        await ledger.settle(reservation, tokens=spent, now=now)
        await usage_log.record(
            UsageRecord(
                request_id=f"{worker}-{index}",
                key_id=key_id,
                user="race",
                requested_model="pro",
                routed_model="mini",
                upstream="mock/#0",
                usage=Usage(input_tokens=spent // 2, output_tokens=spent - spent // 2),
                timestamp=now,
            )
        )
        return spent

    outcomes = await asyncio.gather(*(one(i) for i in range(n)))
    if isinstance(ledger, LeasedQuotaLedger):
        await ledger.close()
    await usage_log.close()
    admitted = [o for o in outcomes if o is not None]
    return {"admitted": len(admitted), "refused": n - len(admitted), "tokens": sum(admitted)}


async def hold(db: PgDatabase, key_id: str, n: int) -> None:
    ledger = PgQuotaLedger(db)
    now = AT
    for _ in range(n):
        await ledger.reserve(key_id=key_id, budgets=HOLD_BUDGETS, tokens=100, now=now, ttl=HOLD_TTL)
    print("held", flush=True)
    await asyncio.sleep(3600)  # until killed


async def main(mode: str, dsn: str, key_id: str, n: int) -> None:
    db = await PgDatabase.connect(dsn, min_size=5, max_size=10)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    try:
        if mode in ("race", "race-leased"):
            outcome = await race(db, key_id, n, worker=str(os.getpid()), leased=mode == "race-leased")
            print(orjson.dumps(outcome).decode(), flush=True)
        else:
            await hold(db, key_id, n)
    finally:
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
