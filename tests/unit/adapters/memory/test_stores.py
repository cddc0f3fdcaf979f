"""In-memory specifics beyond the contracts: seeding the catalog, the usage log's inspection helper and
bound, pruning of the ledger."""

from __future__ import annotations

from datetime import timedelta

from apipod.adapters.memory import InMemoryCatalogStore, InMemoryQuotaLedger, InMemoryUsageLog, SequentialIdGenerator
from apipod.domain.catalog import Catalog
from apipod.domain.quota import Budget
from tests.contracts.builders import DAY, NOW, make_model, make_plan, make_record, make_upstream


async def test_a_catalog_store_can_start_from_a_catalog() -> None:
    catalog = Catalog(upstreams=(make_upstream(),), models=(make_model(),), plans=(make_plan(),))

    store = InMemoryCatalogStore(catalog)

    assert await store.snapshot() == catalog


async def test_records_lists_rows_in_the_order_recorded() -> None:
    log = InMemoryUsageLog()
    await log.record(make_record("req_late", timestamp=NOW + timedelta(hours=1)))
    await log.record(make_record("req_early", timestamp=NOW))

    assert [r.request_id for r in log.records()] == ["req_late", "req_early"]


async def test_a_bounded_usage_log_keeps_the_newest_rows() -> None:
    log = InMemoryUsageLog(max_records=2)
    for i in range(3):
        await log.record(make_record(f"req_{i}", timestamp=NOW + timedelta(seconds=i)))

    assert [r.request_id for r in log.records()] == ["req_1", "req_2"]


async def test_ledger_ids_come_from_the_id_generator() -> None:
    ledger = InMemoryQuotaLedger(SequentialIdGenerator())

    reservation = await ledger.reserve(
        key_id="key_1", budgets=(Budget(window=DAY, tokens=10),), tokens=1, now=NOW, ttl=60
    )

    assert reservation.id == "rsv_1"


async def test_sweep_drops_counters_of_long_ended_windows() -> None:
    ledger = InMemoryQuotaLedger()
    budgets = (Budget(window=DAY, tokens=10),)
    reservation = await ledger.reserve(key_id="key_1", budgets=budgets, tokens=4, now=NOW, ttl=60)
    await ledger.settle(reservation, tokens=4, now=NOW)

    assert await ledger.sweep(NOW + timedelta(days=3)) == 0

    (use,) = await ledger.usage(key_id="key_1", budgets=budgets, now=NOW)
    assert use.tokens == 0
