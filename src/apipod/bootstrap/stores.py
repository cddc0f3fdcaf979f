"""Opening the four stores for a ``DATABASE_URL``: ``memory://``, ``sqlite:///path`` or ``postgresql://``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from apipod.application.ports import CatalogStore, KeyRepository, QuotaLedger, UsageLog
from apipod.bootstrap.settings import ConfigError


@attrs.define
class Stores:
    keys: KeyRepository
    catalog: CatalogStore
    ledger: QuotaLedger
    usage_log: UsageLog
    closers: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list)

    async def close(self) -> None:
        closers, self.closers = self.closers, []
        for close in reversed(closers):
            await close()


def memory_stores() -> Stores:
    from apipod.adapters.memory.catalog import InMemoryCatalogStore
    from apipod.adapters.memory.keys import InMemoryKeyRepository
    from apipod.adapters.memory.quota import InMemoryQuotaLedger
    from apipod.adapters.memory.usage import InMemoryUsageLog

    return Stores(
        keys=InMemoryKeyRepository(),
        catalog=InMemoryCatalogStore(),
        ledger=InMemoryQuotaLedger(),
        usage_log=InMemoryUsageLog(max_records=100_000),
    )


async def sqlite_stores(url: str) -> Stores:
    """The embedded default: migrates itself (no set-up)."""
    from apipod.adapters.sqlite import (
        SqliteCatalogStore,
        SqliteDatabase,
        SqliteKeyRepository,
        SqliteQuotaLedger,
        SqliteUsageLog,
    )

    db = SqliteDatabase.from_url(url)
    await db.open()
    try:
        await db.migrate()
        catalog = SqliteCatalogStore(db)
        await catalog.load()
    except BaseException:
        await db.close()
        raise
    usage_log = SqliteUsageLog(db)
    return Stores(
        keys=SqliteKeyRepository(db),
        catalog=catalog,
        ledger=SqliteQuotaLedger(db),
        usage_log=usage_log,
        closers=[db.close, usage_log.flush],
    )


async def postgres_stores(url: str, *, migrate: bool) -> Stores:
    """Production: refuses an unmigrated or newer schema unless asked to migrate."""
    from apipod.adapters.postgres import (
        PgCatalogStore,
        PgDatabase,
        PgKeyRepository,
        PgQuotaLedger,
        PgUsageLog,
        check_schema,
        run_migrations,
    )

    db = await PgDatabase.connect(url)
    try:
        if migrate:
            await run_migrations(db.pool)
        else:
            await check_schema(db.pool)
    except BaseException:
        await db.close()
        raise
    usage_log = PgUsageLog(db)
    await usage_log.start()
    return Stores(
        keys=PgKeyRepository(db),
        catalog=PgCatalogStore(db),
        ledger=PgQuotaLedger(db),
        usage_log=usage_log,
        closers=[db.close, usage_log.close],
    )


async def open_stores(database_url: str, *, migrate: bool = False) -> Stores:
    if database_url.startswith("memory:"):
        return memory_stores()
    if database_url.startswith("sqlite:"):
        return await sqlite_stores(database_url)
    if database_url.startswith(("postgres://", "postgresql://")):
        return await postgres_stores(database_url, migrate=migrate)
    raise ConfigError(f"DATABASE_URL must start with memory://, sqlite:/// or postgresql://, not {database_url!r}")
