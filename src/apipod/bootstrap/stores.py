"""Opening the stores for a ``DATABASE_URL``: ``memory://``, ``sqlite:///path`` or ``postgresql://``.

The catalog stores of SQLite and PostgreSQL seal provider secrets with the key from ``APIPOD_SECRET_KEY``
(or its key file, bootstrap/secret_key.py); opening them re-seals any legacy plaintext secret, and fails
at once, naming the variable, when the stored secrets were sealed with another key."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs

from apipod.adapters.secret_box import SecretBox
from apipod.application.ports import CatalogStore, Clock, KeyRepository, QuotaLedger, ResponseStore, UsageLog
from apipod.application.ports.health import StoreProbe
from apipod.bootstrap.secret_key import resolve_secret_box
from apipod.bootstrap.settings import ConfigError

if TYPE_CHECKING:
    from apipod.adapters.leased_quota import HoldingLedger


@attrs.define
class Stores:
    keys: KeyRepository
    catalog: CatalogStore
    ledger: QuotaLedger
    usage_log: UsageLog
    responses: ResponseStore  # the Responses API's `store: true`
    probe: StoreProbe  # /health/ready's cheap round trip
    closers: list[Callable[[], Awaitable[None]]] = attrs.field(factory=list)
    # Re-seals every stored provider secret under another key (apipod rotate-secret-key); None in memory.
    reseal: Callable[[SecretBox], Awaitable[int]] | None = None

    async def close(self) -> None:
        closers, self.closers = self.closers, []
        for close in reversed(closers):
            await close()


def memory_stores() -> Stores:
    from apipod.adapters.memory.catalog import InMemoryCatalogStore
    from apipod.adapters.memory.health import InMemoryStoreProbe
    from apipod.adapters.memory.keys import InMemoryKeyRepository
    from apipod.adapters.memory.quota import InMemoryQuotaLedger
    from apipod.adapters.memory.responses import InMemoryResponseStore
    from apipod.adapters.memory.usage import InMemoryUsageLog

    return Stores(
        keys=InMemoryKeyRepository(),
        catalog=InMemoryCatalogStore(),
        ledger=InMemoryQuotaLedger(),
        usage_log=InMemoryUsageLog(max_records=100_000),
        responses=InMemoryResponseStore(),
        probe=InMemoryStoreProbe(),
    )


async def sqlite_stores(
    url: str, box: SecretBox | None = None, *, quota_lease_seconds: float = 0.0, clock: Clock | None = None
) -> Stores:
    """The embedded default: migrates itself (no set-up). ``quota_lease_seconds`` > 0 serves reservations
    from budget leases (adapters/leased_quota.py)."""
    from apipod.adapters.sqlite import (
        SqliteCatalogStore,
        SqliteDatabase,
        SqliteKeyRepository,
        SqliteQuotaLedger,
        SqliteResponseStore,
        SqliteUsageLog,
    )

    db = SqliteDatabase.from_url(url)
    await db.open()
    try:
        await db.migrate()
        catalog = SqliteCatalogStore(db, box, clock=clock)
        await catalog.reseal()  # legacy plaintext -> sealed
        await catalog.load()  # a wrong key fails here, before anything is served
    except BaseException:
        await db.close()
        raise
    from apipod.adapters.sqlite.health import SqliteStoreProbe

    usage_log = SqliteUsageLog(db)
    closers: list[Callable[[], Awaitable[None]]] = [db.close, usage_log.flush]
    return Stores(
        keys=SqliteKeyRepository(db),
        catalog=catalog,
        ledger=_leased(SqliteQuotaLedger(db), quota_lease_seconds, closers),
        usage_log=usage_log,
        responses=SqliteResponseStore(db),
        probe=SqliteStoreProbe(db),
        closers=closers,
        reseal=catalog.reseal,
    )


async def postgres_stores(
    url: str,
    *,
    migrate: bool,
    box: SecretBox | None = None,
    quota_lease_seconds: float = 0.0,
    clock: Clock | None = None,
) -> Stores:
    """Production: refuses an unmigrated or newer schema unless asked to migrate. ``quota_lease_seconds`` > 0
    serves reservations from budget leases (adapters/leased_quota.py)."""
    from apipod.adapters.postgres import (
        PgCatalogStore,
        PgDatabase,
        PgKeyRepository,
        PgQuotaLedger,
        PgResponseStore,
        PgUsageLog,
        check_schema,
        run_migrations,
    )
    from apipod.bootstrap.wait_for_store import wait_for_store, where

    db = await wait_for_store(lambda: PgDatabase.connect(url), what=f"PostgreSQL at {where(url)}")
    try:
        if migrate:
            await run_migrations(db.pool)
        else:
            await check_schema(db.pool)
        catalog = PgCatalogStore(db, box=box, clock=clock)
        await catalog.reseal()  # legacy plaintext -> sealed
        await catalog.snapshot()  # a wrong key fails here, before anything is served
    except BaseException:
        await db.close()
        raise
    from apipod.adapters.postgres.health import PgStoreProbe

    usage_log = PgUsageLog(db)
    await usage_log.start()
    closers: list[Callable[[], Awaitable[None]]] = [db.close, usage_log.close]
    return Stores(
        keys=PgKeyRepository(db),
        catalog=catalog,
        ledger=_leased(PgQuotaLedger(db), quota_lease_seconds, closers),
        usage_log=usage_log,
        responses=PgResponseStore(db),
        probe=PgStoreProbe(db),
        closers=closers,
        reseal=catalog.reseal,
    )


def _leased(ledger: HoldingLedger, lease_seconds: float, closers: list[Callable[[], Awaitable[None]]]) -> QuotaLedger:
    """``ledger`` with budget leases when ``lease_seconds`` > 0 (its ``close`` joins ``closers``: they run last
    first, so the leases are written before the database closes)."""
    if lease_seconds <= 0:
        return ledger
    from apipod.adapters.leased_quota import LeasedQuotaLedger

    leased = LeasedQuotaLedger(ledger, lease_seconds=lease_seconds)
    closers.append(leased.close)
    return leased


async def open_stores(
    database_url: str,
    *,
    migrate: bool = False,
    secret_key: str | None = None,
    quota_lease_seconds: float = 0.0,
    clock: Clock | None = None,
) -> Stores:
    """``secret_key`` is APIPOD_SECRET_KEY (``Settings.secret_key``); unset, the key file is used.
    ``quota_lease_seconds``: ``Settings.quota_lease_seconds`` (SQLite and PostgreSQL). ``clock``: the one the
    catalog's cache is timed by (the system clock when not given)."""
    if database_url.startswith("memory:"):
        return memory_stores()
    if database_url.startswith("sqlite:"):
        return await sqlite_stores(
            database_url,
            resolve_secret_box(database_url, secret_key),
            quota_lease_seconds=quota_lease_seconds,
            clock=clock,
        )
    if database_url.startswith(("postgres://", "postgresql://")):
        return await postgres_stores(
            database_url,
            migrate=migrate,
            box=resolve_secret_box(database_url, secret_key),
            quota_lease_seconds=quota_lease_seconds,
            clock=clock,
        )
    raise ConfigError(f"DATABASE_URL must start with memory://, sqlite:/// or postgresql://, not {database_url!r}")
