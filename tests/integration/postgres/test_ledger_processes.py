"""The ledger across OS processes: exact admission under a race, and holds of a killed process expiring."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson

from apipod.adapters.postgres import PgDatabase, PgQuotaLedger
from tests.integration.postgres.ledger_worker import AT, HOLD_BUDGETS, HOLD_TTL, RACE_BUDGETS

ROOT = Path(__file__).resolve().parents[3]


def spawn(mode: str, dsn: str, key_id: str, n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.postgres.ledger_worker", mode, dsn, key_id, str(n)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


async def read_line(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> bytes:
    assert proc.stdout is not None
    return await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)


async def start_together(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        assert await read_line(proc) == b"ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()


async def test_two_processes_admit_exactly_the_budget_and_the_ledger_equals_the_usage_rows(
    pg: PgDatabase, pg_dsn: str
) -> None:
    for attempt in range(3):  # on a loaded machine one process can take the whole budget before the other starts
        key = f"key_race_{attempt}"
        workers = [spawn("race", pg_dsn, key, 200) for _ in range(2)]
        await start_together(workers)

        results = [orjson.loads(await read_line(w, timeout=120)) for w in workers]
        for worker in workers:
            assert worker.wait(30) == 0

        assert sum(r["admitted"] for r in results) == 50
        assert sum(r["refused"] for r in results) == 350
        settled_tokens = sum(r["tokens"] for r in results)
        day, month = await PgQuotaLedger(pg).usage(key_id=key, budgets=RACE_BUDGETS, now=AT)
        assert day.requests == 50
        assert month.tokens == settled_tokens
        usage = await pg.pool.fetchrow(
            "SELECT count(*) AS n, sum(token_count) AS tokens FROM usage_logs WHERE key_id = $1", key
        )
        assert (usage["n"], usage["tokens"]) == (50, settled_tokens)
        states = await pg.pool.fetch(
            "SELECT state, count(*) AS n FROM quota_reservations WHERE key_id = $1 GROUP BY state", key
        )
        assert {r["state"]: r["n"] for r in states} == {"settled": 50}
        if all(r["admitted"] > 0 for r in results):
            break
    assert all(r["admitted"] > 0 for r in results), results  # both really raced


async def test_holds_of_a_killed_process_expire_and_are_swept(pg: PgDatabase, pg_dsn: str) -> None:
    worker = spawn("hold", pg_dsn, "key_dead", 5)
    await start_together([worker])
    assert await read_line(worker) == b"held\n"
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    ledger = PgQuotaLedger(pg)
    now = AT
    (held,) = await ledger.usage(key_id="key_dead", budgets=HOLD_BUDGETS, now=now)
    assert (held.tokens, held.requests) == (500, 5)

    assert await ledger.sweep(now) == 0  # not expired yet
    swept = await ledger.sweep(now + timedelta(seconds=HOLD_TTL + 1))

    assert swept == 5
    (after,) = await ledger.usage(key_id="key_dead", budgets=HOLD_BUDGETS, now=now)
    assert (after.tokens, after.requests) == (0, 0)
    pending = await pg.pool.fetchval("SELECT count(*) FROM quota_reservations WHERE state = 'pending'")
    assert pending == 0
