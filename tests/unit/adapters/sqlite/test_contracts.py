"""The SQLite adapters, on a fresh migrated file per test, pass the store contracts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apipod.adapters.leased_quota import HoldingLedger, LeasedQuotaLedger
from apipod.adapters.sqlite import (
    SqliteCatalogStore,
    SqliteDatabase,
    SqliteKeyRepository,
    SqliteQuotaLedger,
    SqliteResponseStore,
    SqliteUsageLog,
)
from apipod.application.ports import CatalogStore, KeyRepository, QuotaLedger, ResponseStore, UsageLog
from tests.contracts.catalog import CatalogStoreContract
from tests.contracts.keys import KeyRepositoryContract
from tests.contracts.quota import QuotaLedgerContract
from tests.contracts.quota_leases import PendingHolds, QuotaLeaseContract
from tests.contracts.responses import ResponseStoreContract
from tests.contracts.usage import UsageLogContract


class TestSqliteKeyRepository(KeyRepositoryContract):
    @pytest.fixture
    async def repo(self, db: SqliteDatabase) -> KeyRepository:
        return SqliteKeyRepository(db)


class TestSqliteCatalogStore(CatalogStoreContract):
    @pytest.fixture
    async def store(self, db: SqliteDatabase) -> CatalogStore:
        return SqliteCatalogStore(db)


class TestSqliteQuotaLedger(QuotaLedgerContract):
    @pytest.fixture
    async def ledger(self, db: SqliteDatabase) -> QuotaLedger:
        return SqliteQuotaLedger(db)


class TestSqliteUsageLog(UsageLogContract):
    @pytest.fixture
    async def log(self, db: SqliteDatabase) -> AsyncIterator[UsageLog]:
        log = SqliteUsageLog(db)
        yield log
        await log.flush()


class TestSqliteResponseStore(ResponseStoreContract):
    @pytest.fixture
    async def store(self, db: SqliteDatabase) -> ResponseStore:
        return SqliteResponseStore(db)


class TestSqliteLeasedQuotaLedger(QuotaLedgerContract):
    """Leases change how often the database is written, not what a caller sees."""

    @pytest.fixture
    async def ledger(self, db: SqliteDatabase) -> AsyncIterator[QuotaLedger]:
        ledger = LeasedQuotaLedger(SqliteQuotaLedger(db))
        yield ledger
        await ledger.close()


class TestSqliteQuotaLeases(QuotaLeaseContract):
    @pytest.fixture
    def exact(self, db: SqliteDatabase) -> HoldingLedger:
        return SqliteQuotaLedger(db)

    @pytest.fixture
    def pending_holds(self, db: SqliteDatabase) -> PendingHolds:
        async def count() -> int:
            return int(await db.run(lambda conn: conn.execute("SELECT count(*) FROM quota_reservations").fetchone()[0]))

        return count
