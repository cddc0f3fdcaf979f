"""PgCatalogStore notices another process's catalog writes within a second by reading catalog_meta.version
at most once per interval, and reloads only when it changed."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import attrs
import pytest

from apipod.adapters.postgres import PgCatalogStore, PgDatabase
from apipod.domain.catalog import ModelPrices
from tests.contracts.builders import make_model, make_upstream


async def test_another_processes_write_is_seen_within_a_second(pg: PgDatabase) -> None:
    mine = PgCatalogStore(pg)
    theirs = PgCatalogStore(pg)  # another process, as far as caching goes
    await mine.upsert_upstream(make_upstream("openai"))
    await mine.upsert_model(make_model("mini"))
    assert (await theirs.snapshot()).models[0].prices == ModelPrices()

    priced = attrs.evolve(make_model("mini"), prices=ModelPrices(input=Decimal("0.15"), output=Decimal("0.6")))
    await mine.upsert_model(priced)
    await asyncio.sleep(1.05)

    assert (await theirs.snapshot()).models[0].prices == priced.prices


async def test_an_unchanged_version_costs_one_small_read_and_no_reload(
    pg: PgDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PgCatalogStore(pg, ttl=0.1)
    await store.upsert_upstream(make_upstream("openai"))
    first = await store.snapshot()
    loads = 0
    load = store._load

    async def counting() -> object:
        nonlocal loads
        loads += 1
        return await load()

    monkeypatch.setattr(store, "_load", counting)
    await asyncio.sleep(0.15)

    snapshots = await asyncio.gather(*(store.snapshot() for _ in range(50)))

    assert loads == 0
    assert all(s is first for s in snapshots)
    await PgCatalogStore(pg).set_currency("EUR")  # another process's write
    await asyncio.sleep(0.15)
    try:
        assert (await store.snapshot()).currency == "EUR"
        assert loads == 1
    finally:
        await store.set_currency("USD")  # the database outlives the test (its tables are emptied)
