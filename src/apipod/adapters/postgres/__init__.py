"""PostgreSQL adapters (asyncpg): every store port over one pool, numbered SQL migrations, the key change
listener, and the import from the original Go project's database."""

from apipod.adapters.postgres.catalog import PgCatalogStore
from apipod.adapters.postgres.database import PgDatabase
from apipod.adapters.postgres.key_events import CHANNEL, KeyChangeListener
from apipod.adapters.postgres.keys import PgKeyRepository
from apipod.adapters.postgres.migrations import check_schema, latest_version, migrate
from apipod.adapters.postgres.quota import PgQuotaLedger
from apipod.adapters.postgres.responses import PgResponseStore
from apipod.adapters.postgres.usage import PgUsageLog

run_migrations = migrate

__all__ = [
    "CHANNEL",
    "KeyChangeListener",
    "PgCatalogStore",
    "PgDatabase",
    "PgKeyRepository",
    "PgQuotaLedger",
    "PgResponseStore",
    "PgUsageLog",
    "check_schema",
    "latest_version",
    "migrate",
    "run_migrations",
]
