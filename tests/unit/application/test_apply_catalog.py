"""Applying the configured catalog at start-up writes only what changed: every write bumps the catalog's
version, and every process reloads on a new one."""

from __future__ import annotations

from typing import Any

import attrs

from apipod.application.ports import CatalogStore
from apipod.domain.catalog import Catalog, Route
from tests.unit.application.catalogs import two_upstreams
from tests.unit.application.fakes import make_world


class _Writes:
    """A catalog store that notes every write it passes on."""

    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        self.written: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._store, name)
        if not (name.startswith("upsert_") or name == "set_currency"):
            return attribute

        async def noted(value: Any) -> None:
            self.written.append(f"{name} {getattr(value, 'name', value)}")
            await attribute(value)

        return noted


async def _applied_again(catalog: Catalog, again: Catalog) -> list[str]:
    world = await make_world(catalog)
    writes = _Writes(world.gateway.catalog)
    world.gateway.catalog = writes  # type: ignore[assignment]
    await world.gateway.apply_catalog(again)
    return writes.written


async def test_the_catalog_the_store_holds_is_not_written_again() -> None:
    assert await _applied_again(two_upstreams(), two_upstreams()) == []


async def test_only_what_changed_is_written() -> None:
    catalog = two_upstreams()
    changed = attrs.evolve(
        catalog,
        plans=(attrs.evolve(catalog.plans[0], routes=(Route("a", 1),)),),
        currency="EUR",
    )

    assert await _applied_again(catalog, changed) == ["set_currency EUR", "upsert_plan pro"]
