"""Catalog rows read back through the catalog wire format, the upstream bounds persist, and the migration
that introduced them leaves a database whose old rows still load."""

from __future__ import annotations

from pathlib import Path

import pytest

from apipod.adapters.sqlite import SqliteCatalogStore, SqliteDatabase
from apipod.adapters.sqlite.database import bundled_migrations
from apipod.domain.catalog import Timeouts, Upstream, UpstreamKind
from apipod.domain.errors import StorageError
from apipod.domain.quota import WindowUnit


async def test_the_upstream_bounds_persist(db: SqliteDatabase) -> None:
    upstream = Upstream(
        name="u",
        kind=UpstreamKind.OPENAI,
        base_url="https://api.example/v1",
        timeouts=Timeouts(connect=1.0, read=2.0, first_event=3.0, total=4.0),
        max_event_bytes=1000,
        max_response_bytes=2000,
    )
    await SqliteCatalogStore(db).upsert_upstream(upstream)
    assert (await SqliteCatalogStore(db).load()).upstreams == (upstream,)


async def test_old_rows_load_after_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "apipod.db"
    first = SqliteDatabase(path, migrations=bundled_migrations()[:1])
    await first.migrate()
    await first.run(
        lambda conn: conn.executescript(
            "INSERT INTO upstreams (name, kind, base_url, connect_timeout, read_timeout) "
            "VALUES ('u', 'openai', 'https://api.example', 5, 60);"
            "INSERT INTO upstream_models (name, upstream, upstream_model) VALUES ('m', 'u', 'gpt');"
            'INSERT INTO plans (name, routes, aliases, budgets) VALUES (\'p\', \'[{"model": "m", "weight": 1.0}]\','
            ' \'[]\', \'[{"window": "0h", "tokens": 5, "requests": null},'
            ' {"window": "day", "tokens": 9, "requests": null}]\');'
        )
    )
    await first.close()
    db = SqliteDatabase(path)
    await db.migrate()
    catalog = await SqliteCatalogStore(db).load()
    [upstream] = catalog.upstreams
    assert (upstream.timeouts.connect, upstream.timeouts.first_event, upstream.timeouts.total) == (5.0, 120.0, 1800.0)
    assert upstream.max_event_bytes == 4 * 1024 * 1024
    [plan] = catalog.plans
    assert [(b.window.unit, b.tokens) for b in plan.budgets] == [(WindowUnit.DAY, 9)]  # the 0h budget is gone
    await db.close()


async def test_a_damaged_row_is_a_storage_error(db: SqliteDatabase) -> None:
    await db.run(
        lambda conn: conn.execute(
            "INSERT INTO plans (name, routes, aliases, budgets) VALUES ('p', '\"m\"', '[]', '[]')"
        )
    )
    with pytest.raises(StorageError, match="routes"):
        await SqliteCatalogStore(db).load()
