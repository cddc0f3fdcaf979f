"""KeyRepository over the embedded SQLite database."""

from __future__ import annotations

import builtins
import sqlite3
from datetime import datetime
from typing import Any

from apipod.adapters.sqlite.database import SqliteDatabase, immediate, to_text
from apipod.application.ports import KeyRepository
from apipod.dialects.catalog_wire import from_row
from apipod.domain.errors import ConflictError, NotFoundError
from apipod.domain.keys import ApiKey

_COLUMNS = (
    "id, digest, prefix, name, plan, active, created_at, expires_at, last_used_at,"
    " previous_digest, previous_valid_until"
)
_FIELDS = _COLUMNS.split(", ")


def _key(row: tuple[Any, ...]) -> ApiKey:
    data = dict(zip(_FIELDS, row, strict=True))
    data["active"] = bool(data["active"])  # SQLite has no boolean
    return from_row(data, ApiKey, "api_keys")


class SqliteKeyRepository(KeyRepository):
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def add(self, key: ApiKey) -> None:
        def insert(conn: sqlite3.Connection) -> None:
            with immediate(conn):
                clash = conn.execute(
                    "SELECT id = ? FROM api_keys WHERE id = ? OR digest = ? LIMIT 1", (key.id, key.id, key.digest)
                ).fetchone()
                if clash is not None:
                    what = f"id '{key.id}'" if clash[0] else "the same secret"
                    raise ConflictError(f"A key with {what} exists already.")
                conn.execute(
                    f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                    (
                        key.id,
                        key.digest,
                        key.prefix,
                        key.name,
                        key.plan,
                        int(key.active),
                        to_text(key.created_at),
                        None if key.expires_at is None else to_text(key.expires_at),
                        None if key.last_used_at is None else to_text(key.last_used_at),
                        key.previous_digest,
                        _optional_text(key.previous_valid_until),
                    ),
                )

        await self._db.run(insert)

    async def by_digest(self, digest: str) -> ApiKey | None:
        def select(conn: sqlite3.Connection) -> ApiKey | None:
            return _one(conn, "digest", digest) or _one(conn, "previous_digest", digest)

        return await self._db.run(select)

    async def update(self, key: ApiKey) -> ApiKey:
        def write(conn: sqlite3.Connection) -> ApiKey:
            with immediate(conn):
                for digest in (key.digest, key.previous_digest):
                    clash = conn.execute(
                        "SELECT 1 FROM api_keys WHERE id != ? AND (digest = ? OR previous_digest = ?)",
                        (key.id, digest, digest),
                    ).fetchone()
                    if digest is not None and clash is not None:
                        raise ConflictError("A key with the same secret exists already.")
                conn.execute(
                    "UPDATE api_keys SET digest = ?, prefix = ?, name = ?, plan = ?, active = ?, expires_at = ?,"
                    " previous_digest = ?, previous_valid_until = ? WHERE id = ?",
                    (
                        key.digest,
                        key.prefix,
                        key.name,
                        key.plan,
                        int(key.active),
                        _optional_text(key.expires_at),
                        key.previous_digest,
                        _optional_text(key.previous_valid_until),
                        key.id,
                    ),
                )
                stored = _one(conn, "id", key.id)
            if stored is None:
                raise NotFoundError(f"No key with id '{key.id}'.")
            return stored

        return await self._db.run(write)

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._db.run(lambda conn: _one(conn, "id", key_id))

    async def list(self) -> builtins.list[ApiKey]:
        def select(conn: sqlite3.Connection) -> builtins.list[ApiKey]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, rowid")  # noqa: S608
            return [_key(row) for row in rows]

        return await self._db.run(select)

    async def set_active(self, key_id: str, *, active: bool) -> ApiKey:
        def update(conn: sqlite3.Connection) -> ApiKey:
            with immediate(conn):
                conn.execute("UPDATE api_keys SET active = ? WHERE id = ?", (int(active), key_id))
                key = _one(conn, "id", key_id)
            if key is None:
                raise NotFoundError(f"No key with id '{key_id}'.")
            return key

        return await self._db.run(update)

    async def touch(self, key_id: str, when: datetime) -> None:
        await self._db.run(
            lambda conn: conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (to_text(when), key_id))
        )


def _optional_text(when: datetime | None) -> str | None:
    return None if when is None else to_text(when)


def _one(conn: sqlite3.Connection, column: str, value: str) -> ApiKey | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE {column} = ?", (value,)).fetchone()  # noqa: S608
    return None if row is None else _key(row)
