"""The in-memory adapters pass the same contracts as the database ones."""

from __future__ import annotations

import pytest

from apipod.adapters.memory import (
    InMemoryCatalogStore,
    InMemoryKeyRepository,
    InMemoryQuotaLedger,
    InMemoryResponseStore,
    InMemoryUsageLog,
)
from apipod.application.ports import CatalogStore, KeyRepository, QuotaLedger, ResponseStore, UsageLog
from tests.contracts.catalog import CatalogStoreContract
from tests.contracts.keys import KeyRepositoryContract
from tests.contracts.quota import QuotaLedgerContract
from tests.contracts.responses import ResponseStoreContract
from tests.contracts.usage import UsageLogContract


class TestInMemoryKeyRepository(KeyRepositoryContract):
    @pytest.fixture
    async def repo(self) -> KeyRepository:
        return InMemoryKeyRepository()


class TestInMemoryCatalogStore(CatalogStoreContract):
    @pytest.fixture
    async def store(self) -> CatalogStore:
        return InMemoryCatalogStore()


class TestInMemoryQuotaLedger(QuotaLedgerContract):
    @pytest.fixture
    async def ledger(self) -> QuotaLedger:
        return InMemoryQuotaLedger()


class TestInMemoryUsageLog(UsageLogContract):
    @pytest.fixture
    async def log(self) -> UsageLog:
        return InMemoryUsageLog()


class TestInMemoryResponseStore(ResponseStoreContract):
    @pytest.fixture
    async def store(self) -> ResponseStore:
        return InMemoryResponseStore()
