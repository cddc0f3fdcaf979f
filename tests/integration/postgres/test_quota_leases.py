"""Budget leases on PostgreSQL: the shared lease contract, and two OS processes racing on one key (the
contract suite runs against LeasedQuotaLedger too, in test_contracts.py)."""

from __future__ import annotations

import orjson
import pytest

from apipod.adapters.leased_quota import HoldingLedger
from apipod.adapters.postgres import PgDatabase, PgQuotaLedger
from tests.contracts.quota_leases import PendingHolds, QuotaLeaseContract
from tests.integration.postgres.ledger_worker import AT, RACE_BUDGETS
from tests.integration.postgres.test_ledger_processes import read_line, spawn, start_together


async def rows(pg: PgDatabase) -> dict[str, int]:
    states = await pg.pool.fetch("SELECT state, count(*) AS n FROM quota_reservations GROUP BY state")
    return {r["state"]: r["n"] for r in states}


class TestPgQuotaLeases(QuotaLeaseContract):
    @pytest.fixture
    def exact(self, pg: PgDatabase) -> HoldingLedger:
        return PgQuotaLedger(pg)

    @pytest.fixture
    def pending_holds(self, pg: PgDatabase) -> PendingHolds:
        async def count() -> int:
            return int(await pg.pool.fetchval("SELECT count(*) FROM quota_reservations WHERE state = 'pending'"))

        return count


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
