"""SqliteDatabase: URLs, the worker thread, error translation and migrations."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apipod.adapters.sqlite.database import (
    Migration,
    SqliteDatabase,
    bundled_migrations,
    sqlite_path_from_url,
    statements,
)
from apipod.domain.errors import ConflictError, StorageError


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "apipod.db")
    yield database
    await database.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///./apipod.db", "./apipod.db"),
        ("sqlite:///apipod.db", "apipod.db"),
        ("sqlite:////var/lib/apipod/apipod.db", "/var/lib/apipod/apipod.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("sqlite://", ":memory:"),
    ],
)
def test_sqlite_urls_name_a_path(url: str, path: str) -> None:
    assert sqlite_path_from_url(url) == path


@pytest.mark.parametrize("url", ["postgresql://localhost/db", "sqlite://host/apipod.db", "sqlite:///a.db?mode=ro"])
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite"):
        sqlite_path_from_url(url)


async def test_statements_run_inline_on_the_loop_thread_by_default(db: SqliteDatabase) -> None:
    names = {await db.run(lambda conn: threading.current_thread().name) for _ in range(5)}

    assert names == {threading.current_thread().name}


async def test_statements_run_on_one_worker_thread_when_not_inline(tmp_path: Path) -> None:
    worker_db = SqliteDatabase(tmp_path / "worker.db", inline=False)
    try:
        names = {await worker_db.run(lambda conn: threading.current_thread().name) for _ in range(5)}
    finally:
        await worker_db.close()

    assert len(names) == 1
    (name,) = names
    assert name.startswith("apipod-sqlite")
    assert name != threading.current_thread().name


async def test_a_file_database_uses_wal_and_waits_for_the_lock_itself(db: SqliteDatabase) -> None:
    mode = await db.run(lambda conn: conn.execute("PRAGMA journal_mode").fetchone()[0])
    timeout = await db.run(lambda conn: conn.execute("PRAGMA busy_timeout").fetchone()[0])

    assert (mode, timeout) == ("wal", 0)  # SQLite's busy handler is off: ``_call_locked`` retries instead


def hold_the_write_lock(path: Path, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """Another process's writer: takes the write lock, holds it ``seconds``, commits."""
    taken = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES ('other')")
        taken.set()
        threading.Event().wait(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread, taken


def write(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES ('mine')")
    conn.execute("COMMIT")


async def test_a_write_waits_for_another_writer_then_runs_once(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "apipod.db", migrations=())
    try:
        await db.run(lambda conn: conn.execute("CREATE TABLE t (v TEXT)"))
        holder, taken = hold_the_write_lock(tmp_path / "apipod.db", 0.05)
        taken.wait()
        await db.run(write)  # busy at first: rolled back, retried until the other commits
        holder.join()
        rows = await db.run(lambda conn: sorted(r[0] for r in conn.execute("SELECT v FROM t")))
        assert rows == ["mine", "other"]
    finally:
        await db.close()


async def test_a_write_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "apipod.db", migrations=(), busy_timeout=0.05)
    try:
        await db.run(lambda conn: conn.execute("CREATE TABLE t (v TEXT)"))
        holder, taken = hold_the_write_lock(tmp_path / "apipod.db", 0.5)
        taken.wait()
        with pytest.raises(StorageError, match="database is locked"):
            await db.run(write)
        holder.join()
        assert await db.run(lambda conn: [r[0] for r in conn.execute("SELECT v FROM t")]) == ["other"]
    finally:
        await db.close()


async def test_open_creates_missing_parent_directories(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "nested" / "dir" / "apipod.db")
    await database.open()
    await database.close()

    assert (tmp_path / "nested" / "dir" / "apipod.db").exists()


async def test_driver_errors_become_storage_errors(db: SqliteDatabase) -> None:
    with pytest.raises(StorageError, match="no such table"):
        await db.run(lambda conn: conn.execute("SELECT * FROM nowhere"))


async def test_integrity_errors_become_conflicts(db: SqliteDatabase) -> None:
    await db.run(lambda conn: conn.execute("CREATE TABLE t (x TEXT PRIMARY KEY)"))
    await db.run(lambda conn: conn.execute("INSERT INTO t VALUES ('a')"))

    with pytest.raises(ConflictError):
        await db.run(lambda conn: conn.execute("INSERT INTO t VALUES ('a')"))


async def test_a_closed_database_refuses_work(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / "apipod.db")
    await database.open()
    await database.close()

    with pytest.raises(StorageError, match="closed"):
        await database.run(lambda conn: None)
    await database.close()  # idempotent


async def test_migrate_applies_every_bundled_migration_once(db: SqliteDatabase) -> None:
    latest = bundled_migrations()[-1].version

    assert await db.schema_version() == 0
    assert await db.migrate() == [m.version for m in bundled_migrations()]
    assert await db.migrate() == []
    assert await db.schema_version() == latest == db.latest_version
    tables = await db.run(lambda conn: {r[0] for r in conn.execute("SELECT name FROM sqlite_master")})
    assert {"api_keys", "upstreams", "quota_windows", "quota_reservations", "usage_records"} <= tables


async def test_a_newer_schema_is_refused_naming_both_versions(db: SqliteDatabase) -> None:
    await db.migrate()
    await db.run(
        lambda conn: conn.execute("INSERT INTO schema_migrations VALUES (9999, '9999_future.sql', '2030-01-01')")
    )

    with pytest.raises(StorageError) as caught:
        await db.migrate()

    assert "9999" in caught.value.message
    assert str(db.latest_version) in caught.value.message


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    broken = (
        Migration(1, "0001_ok.sql", "CREATE TABLE one (x INTEGER);"),
        Migration(2, "0002_broken.sql", "CREATE TABLE two (x INTEGER);\nINSERT INTO missing VALUES (1);"),
    )
    database = SqliteDatabase(tmp_path / "apipod.db", migrations=broken)
    try:
        with pytest.raises(StorageError):
            await database.migrate()

        tables = await database.run(lambda conn: {r[0] for r in conn.execute("SELECT name FROM sqlite_master")})
        assert "one" in tables
        assert "two" not in tables
        assert await database.schema_version() == 1
    finally:
        await database.close()


async def test_an_in_memory_database_migrates(tmp_path: Path) -> None:
    database = SqliteDatabase.from_url("sqlite:///:memory:")
    try:
        await database.migrate()
        assert await database.schema_version() == database.latest_version
    finally:
        await database.close()
    assert list(tmp_path.iterdir()) == []


def test_statements_split_on_complete_statements_only() -> None:
    script = """-- a comment; with a semicolon
CREATE TABLE a (x TEXT DEFAULT 'semi;colon');
CREATE TRIGGER t AFTER INSERT ON a BEGIN
    UPDATE a SET x = 'y';
END;
-- trailing comment
"""
    found = list(statements(script))

    assert len(found) == 2
    assert "semi;colon" in found[0]
    assert found[1].strip().endswith("END;")
    conn = sqlite3.connect(":memory:")
    for statement in found:
        conn.execute(statement)
    conn.close()


def test_an_unterminated_statement_is_an_error() -> None:
    with pytest.raises(StorageError, match="incomplete"):
        list(statements("CREATE TABLE a (x TEXT);\nCREATE TABLE b (x TEXT)"))
