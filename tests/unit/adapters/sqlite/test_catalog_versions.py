"""Processes sharing one SQLite file see each other's catalog writes within a second, through one tiny
version read per interval (never a read per request)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from apipod.adapters.memory.system import FixedClock
from apipod.adapters.sqlite import SqliteCatalogStore, SqliteDatabase
from apipod.domain.catalog import ModelPrices
from tests.contracts.builders import make_model, make_upstream


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[SqliteDatabase, SqliteDatabase]]:
    """Two connections to one file, as two processes would have."""
    first = SqliteDatabase(tmp_path / "apipod.db")
    await first.migrate()
    second = SqliteDatabase(tmp_path / "apipod.db")
    await second.open()
    yield first, second
    await first.close()
    await second.close()


async def test_another_processes_write_is_seen_within_the_recheck_interval(
    two: tuple[SqliteDatabase, SqliteDatabase],
) -> None:
    mine = SqliteCatalogStore(two[0], recheck=0.2)
    theirs = SqliteCatalogStore(two[1], recheck=0.2)
    await mine.upsert_upstream(make_upstream("openai"))
    await mine.upsert_model(make_model("mini"))
    assert [m.name for m in (await theirs.snapshot()).models] == ["mini"]

    priced = attrs.evolve(make_model("mini"), prices=ModelPrices(input=Decimal("0.5")))
    await mine.upsert_model(priced)
    await mine.set_currency("EUR")

    assert (await theirs.snapshot()).models[0].prices == ModelPrices()  # its copy, until the next check
    await asyncio.sleep(0.25)
    catalog = await theirs.snapshot()
    assert catalog.models[0].prices == priced.prices
    assert catalog.currency == "EUR"


async def test_the_default_interval_is_at_most_a_second(two: tuple[SqliteDatabase, SqliteDatabase]) -> None:
    mine = SqliteCatalogStore(two[0])
    theirs = SqliteCatalogStore(two[1])
    await theirs.snapshot()

    await mine.upsert_upstream(make_upstream("openai"))
    await asyncio.sleep(1.05)

    assert [u.name for u in (await theirs.snapshot()).upstreams] == ["openai"]


async def test_a_burst_of_snapshots_reads_the_version_once_and_reloads_only_on_change(
    two: tuple[SqliteDatabase, SqliteDatabase], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteCatalogStore(two[0], recheck=0.1)
    await store.upsert_upstream(make_upstream("openai"))
    calls = 0
    run = two[0].run

    async def counting(fn: object) -> object:
        nonlocal calls
        calls += 1
        return await run(fn)  # type: ignore[arg-type]

    monkeypatch.setattr(two[0], "run", counting)
    first = await store.snapshot()
    await asyncio.sleep(0.15)
    snapshots = await asyncio.gather(*(store.snapshot() for _ in range(50)))

    assert calls == 1  # one version read; the version had not changed, so no reload
    assert all(s is first for s in snapshots)


async def test_the_interval_is_timed_by_the_injected_clock(two: tuple[SqliteDatabase, SqliteDatabase]) -> None:
    """Time comes from the injected clock: the copy is rechecked when that clock says so, not the system's."""
    clock = FixedClock()
    mine = SqliteCatalogStore(two[0])
    theirs = SqliteCatalogStore(two[1], recheck=0.05, clock=clock)
    await theirs.snapshot()
    await mine.upsert_upstream(make_upstream("openai"))

    await asyncio.sleep(0.1)  # twice the interval by the system's clock; none by the injected one
    assert (await theirs.snapshot()).upstreams == ()
    clock.advance(0.05)
    assert [u.name for u in (await theirs.snapshot()).upstreams] == ["openai"]
