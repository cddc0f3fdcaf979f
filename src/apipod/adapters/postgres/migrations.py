"""Numbered plain-SQL migrations (``migrations/NNNN_name.sql``), applied in order, each exactly once.

``migrate`` runs in one transaction behind an advisory lock, so several processes (replicas starting
together, ``apipod migrate`` run twice) can call it at once: one applies, the others wait and find
nothing left to do. ``check_schema`` is what ``apipod serve`` calls before taking traffic.
"""

from __future__ import annotations

import logging
import re
from importlib import resources

import asyncpg
import attrs

from apipod.adapters.postgres.database import storage_errors
from apipod.domain.errors import StorageError

log = logging.getLogger("apipod.migrations")

MIGRATIONS_PACKAGE = "apipod.adapters.postgres"
MIGRATE_LOCK = 0x61706970_6F640001  # "apipod" + 1: an arbitrary, stable advisory lock id
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@attrs.frozen
class Migration:
    version: int
    name: str
    sql: str = attrs.field(repr=False)


def available_migrations() -> tuple[Migration, ...]:
    """The migrations shipped with this apipod, by version."""
    folder = resources.files(MIGRATIONS_PACKAGE) / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StorageError(f"Migration files are not numbered 1..N without gaps: {versions}")
    return tuple(found)


def latest_version() -> int:
    migrations = available_migrations()
    return migrations[-1].version if migrations else 0


async def migrate(pool: asyncpg.Pool) -> list[int]:
    """Apply every pending migration; returns the versions applied now (empty when up to date).

    Raises:
        StorageError: the database holds a newer schema than this apipod knows, or a migration failed
            (then nothing of this run is applied).
    """
    migrations = available_migrations()
    with storage_errors("migrating the database"):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATE_LOCK)
            await conn.execute(_CREATE_VERSIONS)
            applied = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            _refuse_newer(applied, migrations)
            done = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", migration.version, migration.name
                )
                done.append(migration.version)
    for version in done:
        log.info("applied migration %04d", version)
    return done


async def check_schema(pool: asyncpg.Pool) -> None:
    """Refuse to serve on a schema this apipod does not match.

    Raises:
        StorageError: unmigrated or behind (with "run `apipod migrate`"), or newer than this apipod.
    """
    migrations = available_migrations()
    with storage_errors("checking the database schema"):
        async with pool.acquire() as conn:
            exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
            applied = (
                {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
                if exists
                else set()
            )
    _refuse_newer(applied, migrations)
    missing = [m.version for m in migrations if m.version not in applied]
    if not applied:
        raise StorageError(
            "The PostgreSQL database has no apipod schema yet: run `apipod migrate` (or `apipod serve --migrate`)."
        )
    if missing:
        raise StorageError(
            f"The PostgreSQL schema is at version {max(applied)} but this apipod needs version "
            f"{migrations[-1].version}: run `apipod migrate` (or `apipod serve --migrate`)."
        )


def _refuse_newer(applied: set[int], migrations: tuple[Migration, ...]) -> None:
    known = migrations[-1].version if migrations else 0
    newer = sorted(v for v in applied if v > known)
    if newer:
        raise StorageError(
            f"The PostgreSQL schema is at version {newer[-1]}, newer than this apipod knows (up to {known}): "
            "upgrade apipod, or point it at another database."
        )
