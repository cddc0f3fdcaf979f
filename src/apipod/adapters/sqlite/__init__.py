"""The embedded SQLite store (the default ``DATABASE_URL=sqlite:///./apipod.db``): stdlib ``sqlite3`` on
one worker thread per database, WAL mode, numbered migrations in ``migrations/``."""

from apipod.adapters.sqlite.catalog import SqliteCatalogStore
from apipod.adapters.sqlite.database import SqliteDatabase, sqlite_path_from_url
from apipod.adapters.sqlite.keys import SqliteKeyRepository
from apipod.adapters.sqlite.quota import SqliteQuotaLedger
from apipod.adapters.sqlite.responses import SqliteResponseStore
from apipod.adapters.sqlite.usage import SqliteUsageLog

__all__ = [
    "SqliteCatalogStore",
    "SqliteDatabase",
    "SqliteKeyRepository",
    "SqliteQuotaLedger",
    "SqliteResponseStore",
    "SqliteUsageLog",
    "sqlite_path_from_url",
]
