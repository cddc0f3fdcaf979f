"""PgCatalogStore serves snapshots from memory: its own writes show at once, another process's within the
TTL, and a burst of readers causes one reload."""

from __future__ import annotations

import asyncio
import time

import pytest

from apipod.adapters.memory.system import FixedClock
from apipod.adapters.postgres import PgCatalogStore, PgDatabase
from tests.contracts.builders import make_upstream


async def test_own_writes_show_at_once_and_other_writers_within_the_ttl(pg: PgDatabase) -> None:
    mine = PgCatalogStore(pg, ttl=0.3)
    theirs = PgCatalogStore(pg, ttl=0.3)  # another process, as far as caching goes
    await mine.upsert_upstream(make_upstream("openai"))
    assert [u.name for u in (await mine.snapshot()).upstreams] == ["openai"]

    await theirs.upsert_upstream(make_upstream("other"))

    assert [u.name for u in (await mine.snapshot()).upstreams] == ["openai"]  # cached
    await asyncio.sleep(0.35)
    assert [u.name for u in (await mine.snapshot()).upstreams] == ["openai", "other"]


async def test_concurrent_snapshots_share_one_reload(pg: PgDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PgCatalogStore(pg)
    await store.upsert_upstream(make_upstream("openai"))
    loads = 0
    load = store._load

    async def counting() -> object:
        nonlocal loads
        loads += 1
        return await load()

    monkeypatch.setattr(store, "_load", counting)

    snapshots = await asyncio.gather(*(store.snapshot() for _ in range(50)))

    assert loads == 1
    assert all(s is snapshots[0] for s in snapshots)


async def test_a_copy_past_half_its_ttl_is_served_while_it_is_checked_in_the_background(pg: PgDatabase) -> None:
    mine = PgCatalogStore(pg, ttl=2.0)
    theirs = PgCatalogStore(pg, ttl=2.0)
    await mine.upsert_upstream(make_upstream("openai"))
    await mine.snapshot()  # the copy, checked now
    checked = time.monotonic()
    await theirs.upsert_upstream(make_upstream("other"))
    await asyncio.sleep(1.1)  # past half the ttl, within it

    # served at once, the copy as it was; the check runs behind it and the new copy comes before the ttl is up
    assert [u.name for u in (await mine.snapshot()).upstreams] == ["openai"]
    while len((await mine.snapshot()).upstreams) == 1 and time.monotonic() - checked < 2.0:
        await asyncio.sleep(0.005)
    assert time.monotonic() - checked < 2.0
    assert [u.name for u in (await mine.snapshot()).upstreams] == ["openai", "other"]


async def test_the_copys_age_is_timed_by_the_injected_clock(pg: PgDatabase) -> None:
    """Time comes from the injected clock: the copy expires when that clock says so, not the system's."""
    clock = FixedClock()
    mine = PgCatalogStore(pg, ttl=0.1, clock=clock)
    theirs = PgCatalogStore(pg)
    await mine.upsert_upstream(make_upstream("openai"))
    await mine.snapshot()
    await theirs.upsert_upstream(make_upstream("other"))

    await asyncio.sleep(0.2)  # past the ttl by the system's clock; not by the injected one
    assert [u.name for u in (await mine.snapshot()).upstreams] == ["openai"]
    clock.advance(0.1)
    assert [u.name for u in (await mine.snapshot()).upstreams] == ["openai", "other"]
