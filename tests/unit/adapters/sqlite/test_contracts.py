"""The SQLite adapters, on a fresh migrated file per test, pass the store contracts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

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
from tests.contracts.responses import ResponseStoreContract
from tests.contracts.usage import UsageLogContract


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "apipod.db")
    await database.migrate()
    yield database
    await database.close()


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
