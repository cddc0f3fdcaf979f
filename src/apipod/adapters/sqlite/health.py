"""Readiness of the SQLite file: one ``SELECT 1`` on the store's own connection."""

from __future__ import annotations

import sqlite3

from apipod.adapters.sqlite.database import SqliteDatabase


class SqliteStoreProbe:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def ping(self) -> None:
        await self._db.run(_select_one)


def _select_one(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1").fetchone()
