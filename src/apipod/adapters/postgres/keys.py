"""PgKeyRepository: API keys in PostgreSQL, found by digest. No caching here: the use case caches lookups,
and ``set_active`` notifies every process (``key_events``) so revocations reach their caches at once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apipod.adapters.postgres.database import PgDatabase
from apipod.adapters.postgres.key_events import CHANNEL
from apipod.application.ports import KeyRepository
from apipod.dialects.catalog_wire import from_row
from apipod.domain.errors import ConflictError, NotFoundError
from apipod.domain.keys import ApiKey

_INSERT = """
INSERT INTO api_keys (id, digest, prefix, name, plan, active, created_at, expires_at, last_used_at,
                      previous_digest, previous_valid_until)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
_FIELDS = (
    "id",
    "digest",
    "prefix",
    "name",
    "plan",
    "active",
    "created_at",
    "expires_at",
    "last_used_at",
    "previous_digest",
    "previous_valid_until",
)
_COLUMNS = ", ".join(_FIELDS)
_SELECT = f"SELECT {_COLUMNS} FROM api_keys"  # noqa: S608
# A rotated-out secret is found through its own index; the current digest wins if both ever matched.
_BY_DIGEST = _SELECT + " WHERE digest = $1 OR previous_digest = $1 ORDER BY digest = $1 DESC LIMIT 1"
_BY_ID = _SELECT + " WHERE id = $1"
_ALL = _SELECT + " ORDER BY created_at, id"
# NOTE: the NOTIFY rides in the same statement, so it is sent exactly when the change commits.
_SET_ACTIVE = f"""
UPDATE api_keys SET active = $2 WHERE id = $1
RETURNING {_COLUMNS}, pg_notify($3, id)
"""  # noqa: S608
_CLASH = "SELECT 1 FROM api_keys WHERE id != $1 AND (digest = ANY($2::text[]) OR previous_digest = ANY($2::text[]))"
_UPDATE = f"""
UPDATE api_keys SET digest = $2, prefix = $3, name = $4, plan = $5, active = $6, expires_at = $7,
                    previous_digest = $8, previous_valid_until = $9
WHERE id = $1
RETURNING {_COLUMNS}, pg_notify($10, id)
"""  # noqa: S608
_TOUCH = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)"


def _key(row: Any) -> ApiKey:
    return from_row({name: row[name] for name in _FIELDS}, ApiKey, "api_keys")


class PgKeyRepository(KeyRepository):
    def __init__(self, db: PgDatabase) -> None:
        self._db = db

    async def add(self, key: ApiKey) -> None:
        async with self._db.connection("adding a key") as conn:
            await conn.execute(
                _INSERT,
                key.id,
                key.digest,
                key.prefix,
                key.name,
                key.plan,
                key.active,
                key.created_at,
                key.expires_at,
                key.last_used_at,
                key.previous_digest,
                key.previous_valid_until,
            )

    async def by_digest(self, digest: str) -> ApiKey | None:
        async with self._db.connection("looking up a key") as conn:
            row = await conn.fetchrow(_BY_DIGEST, digest)
        return None if row is None else _key(row)

    async def get(self, key_id: str) -> ApiKey | None:
        async with self._db.connection("reading a key") as conn:
            row = await conn.fetchrow(_BY_ID, key_id)
        return None if row is None else _key(row)

    async def list(self) -> list[ApiKey]:
        async with self._db.connection("listing keys") as conn:
            rows = await conn.fetch(_ALL)
        return [_key(row) for row in rows]

    async def set_active(self, key_id: str, *, active: bool) -> ApiKey:
        async with self._db.connection("changing a key") as conn:
            row = await conn.fetchrow(_SET_ACTIVE, key_id, active, CHANNEL)
        if row is None:
            raise NotFoundError(f"No key with id '{key_id}'.")
        return _key(row)

    async def update(self, key: ApiKey) -> ApiKey:
        digests = [d for d in (key.digest, key.previous_digest) if d is not None]
        async with self._db.connection("changing a key") as conn, conn.transaction():
            if await conn.fetchrow(_CLASH, key.id, digests) is not None:
                raise ConflictError("A key with the same secret exists already.")
            row = await conn.fetchrow(
                _UPDATE,
                key.id,
                key.digest,
                key.prefix,
                key.name,
                key.plan,
                key.active,
                key.expires_at,
                key.previous_digest,
                key.previous_valid_until,
                CHANNEL,
            )
        if row is None:
            raise NotFoundError(f"No key with id '{key.id}'.")
        return _key(row)

    async def touch(self, key_id: str, when: datetime) -> None:
        async with self._db.connection("noting a key's use") as conn:
            await conn.execute(_TOUCH, key_id, when)
