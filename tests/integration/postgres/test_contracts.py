"""The PostgreSQL adapters pass the same store contracts as the memory and SQLite ones."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from apipod.adapters.leased_quota import LeasedQuotaLedger
from apipod.adapters.postgres import (
    PgCatalogStore,
    PgDatabase,
    PgKeyRepository,
    PgQuotaLedger,
    PgResponseStore,
    PgUsageLog,
)
from apipod.application.ports import CatalogStore, KeyRepository, QuotaLedger, ResponseStore, UsageLog
from tests.contracts.catalog import CatalogStoreContract
from tests.contracts.keys import KeyRepositoryContract
from tests.contracts.quota import QuotaLedgerContract
from tests.contracts.responses import ResponseStoreContract
from tests.contracts.usage import UsageLogContract


class TestPgKeyRepository(KeyRepositoryContract):
    @pytest.fixture
    async def repo(self, pg: PgDatabase) -> KeyRepository:
        return PgKeyRepository(pg)


class TestPgCatalogStore(CatalogStoreContract):
    @pytest.fixture
    async def store(self, pg: PgDatabase) -> CatalogStore:
        return PgCatalogStore(pg)


class TestPgQuotaLedger(QuotaLedgerContract):
    @pytest.fixture
    async def ledger(self, pg: PgDatabase) -> QuotaLedger:
        return PgQuotaLedger(pg)


class TestLeasedQuotaLedger(QuotaLedgerContract):
    """Leases change how often the database is written, not what a caller sees."""

    @pytest.fixture
    async def ledger(self, pg: PgDatabase) -> AsyncIterator[QuotaLedger]:
        ledger = LeasedQuotaLedger(PgQuotaLedger(pg))
        yield ledger
        await ledger.close()


class TestPgUsageLog(UsageLogContract):
    @pytest.fixture
    async def log(self, pg: PgDatabase) -> AsyncIterator[UsageLog]:
        log = PgUsageLog(pg)
        yield log
        await log.close()


class TestPgResponseStore(ResponseStoreContract):
    @pytest.fixture
    async def store(self, pg: PgDatabase) -> ResponseStore:
        # NOTE: conftest's ``pg`` empties the tables it knows; this one is emptied here.
        await pg.pool.execute("TRUNCATE stored_responses")
        return PgResponseStore(pg)
