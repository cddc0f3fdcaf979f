"""Database maintenance commands: migrations and the import from the original Go project."""

from __future__ import annotations

from typing import Any

import attrs

from apipod.bootstrap.settings import ConfigError, Settings
from apipod.bootstrap.stores import open_stores


async def migrate_database(database_url: str) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    if database_url.startswith("sqlite:"):
        from apipod.adapters.sqlite import SqliteDatabase

        db = SqliteDatabase.from_url(database_url)
        await db.open()
        try:
            return await db.migrate()
        finally:
            await db.close()
    if database_url.startswith(("postgres://", "postgresql://")):
        from apipod.adapters.postgres import PgDatabase, run_migrations

        pg = await PgDatabase.connect(database_url)
        try:
            return await run_migrations(pg.pool)
        finally:
            await pg.close()
    if database_url.startswith("memory:"):
        return []
    raise ConfigError(f"cannot migrate {database_url!r}: not a SQLite or PostgreSQL URL")


async def import_original_database(settings: Settings, source_dsn: str) -> dict[str, Any]:
    """Import plans, providers, accounts, models, routes and users of the Go original into apipod's stores."""
    from apipod.adapters.postgres.import_original import import_original

    stores = await open_stores(settings.database_url)
    try:
        report = await import_original(source_dsn, catalog=stores.catalog, keys=stores.keys)
    finally:
        await stores.close()
    return attrs.asdict(report)
