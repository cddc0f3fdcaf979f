"""One SQLite connection on one dedicated thread: the event loop never blocks on the file, and every
statement runs in order, so a transaction needs no lock of ours. Other processes sharing the file are
kept consistent by SQLite itself (WAL, ``BEGIN IMMEDIATE``, ``busy_timeout``)."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import attrs

from apipod.adapters.sqlite.checkpointer import WalCheckpointer
from apipod.domain.errors import ApipodError, ConflictError, StorageError

T = TypeVar("T")

MEMORY = ":memory:"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[A-Za-z0-9_]+\.sql$")


def sqlite_path_from_url(url: str) -> str:
    """``sqlite:///./apipod.db`` -> ``./apipod.db``; ``sqlite:////var/lib/apipod.db`` -> the absolute path;
    ``sqlite:///:memory:`` (or ``sqlite://``) -> ``:memory:``. Raises ValueError for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {url!r}")
    if parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"a sqlite URL is sqlite:///<path> with no host or parameters, not {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    return path or MEMORY


def to_text(when: datetime) -> str:
    """Fixed-width UTC ISO 8601, so text order is time order (naive values are taken as UTC)."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.isoformat(timespec="microseconds")


def from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes SQLite's write lock at once, so read-check-write is atomic across
    processes too. Rolls back on any exception, domain errors included."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


@attrs.frozen
class Migration:
    version: int
    name: str
    sql: str = attrs.field(repr=False)


def bundled_migrations() -> tuple[Migration, ...]:
    """The numbered ``migrations/NNNN_name.sql`` files shipped with apipod, in order."""
    found = []
    for entry in resources.files("apipod.adapters.sqlite").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return tuple(found)


def statements(script: str) -> Iterator[str]:
    """Split a script into complete statements (``sqlite3.complete_statement`` knows about triggers and
    quoted semicolons), so a migration can run inside our own transaction, unlike ``executescript``."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending
            pending = ""
    leftover = [line for line in pending.splitlines() if line.strip() and not line.strip().startswith("--")]
    if leftover:
        raise StorageError("A migration ends with an incomplete SQL statement.")


class SqliteDatabase:
    """Owns the connection and its worker thread.

    Args:
        path: a file path, or ``":memory:"`` (one private database, gone at ``close``).
        busy_timeout: seconds to wait for another process's write lock before failing.
        migrations: the schema steps; the bundled ones by default.
        inline: run statements on the calling (event loop) thread. PERF: a local SQLite statement in WAL
            mode takes tens of microseconds, less than the two thread switches and the future a worker
            hop costs, and it makes each call atomic on the loop. The price is that another process
            holding the write lock blocks the loop for up to ``busy_timeout``; SQLite is the embedded
            single-process store, and PostgreSQL is the store for many processes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        migrations: tuple[Migration, ...] | None = None,
        inline: bool = True,
    ) -> None:
        self._path = os.fspath(path)
        self._inline = inline
        self._lock = threading.Lock()
        self._busy_timeout = busy_timeout
        self._migrations = bundled_migrations() if migrations is None else migrations
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apipod-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: WalCheckpointer | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, *, busy_timeout: float = 5.0) -> SqliteDatabase:
        return cls(sqlite_path_from_url(url), busy_timeout=busy_timeout)

    @property
    def path(self) -> str:
        return self._path

    @property
    def latest_version(self) -> int:
        """The newest schema version this code knows."""
        return self._migrations[-1].version if self._migrations else 0

    async def open(self) -> None:
        """Open the file now, so a bad path or a locked database fails at start-up rather than at the first
        request. Optional: ``run`` opens on first use."""
        await self.run(lambda conn: None)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the worker thread. sqlite3 errors come out as StorageError (or
        ConflictError for a broken uniqueness rule); domain errors raised by ``fn`` pass through.

        NOTE: cancelling the caller does not stop ``fn``: a started transaction still commits.
        """
        if self._closed:
            raise StorageError("The SQLite database is closed.")
        if self._inline:
            return self._call(fn)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    async def migrate(self) -> list[int]:
        """Apply the pending migrations, each in its own transaction; returns the versions applied.

        Raises:
            StorageError: the database's schema is newer than this code knows.
        """
        return await self.run(self._migrate)

    async def schema_version(self) -> int:
        """The newest migration applied (0 for an empty database)."""
        return await self.run(_current_version)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_connection)
        self._executor.shutdown(wait=False)

    # -- on the worker thread -------------------------------------------------------------------------

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            return self._call_locked(fn)

    def _call_locked(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn if self._conn is not None else self._open()
        deadline: float | None = None
        pause = _FIRST_PAUSE
        while True:
            try:
                return self._attempt(conn, fn)
            except _BusyError:
                now = time.monotonic()
                deadline = now + self._busy_timeout if deadline is None else deadline
                if now >= deadline:
                    raise StorageError("The SQLite database failed: database is locked.") from None
                time.sleep(pause)
                pause = min(pause * 2, _LAST_PAUSE)

    def _attempt(self, conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` once; ``_BusyError`` (after a rollback) when another process held the write lock."""
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            _rollback(conn)
            if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
                raise _BusyError from exc
            raise StorageError(f"The SQLite database failed: {exc}.") from exc
        except sqlite3.IntegrityError as exc:
            _rollback(conn)
            raise ConflictError(f"The write conflicts with stored data ({exc}).") from exc
        except sqlite3.Error as exc:
            _rollback(conn)
            raise StorageError(f"The SQLite database failed: {exc}.") from exc
        except ApipodError:
            _rollback(conn)
            raise

    def _open(self) -> sqlite3.Connection:
        if self._path != MEMORY:
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            _create_private(self._path)
        # isolation_level=None: no implicit transactions; adapters say BEGIN IMMEDIATE themselves.
        conn = sqlite3.connect(self._path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        if self._path != MEMORY:
            conn.execute("PRAGMA journal_mode = WAL")
            # PERF: checkpoints run on their own thread, not inside a request's commit (checkpointer.py).
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")  # the log file after it starts over
            if self._checkpointer is None:
                self._checkpointer = WalCheckpointer(self._path)
                self._checkpointer.start()
            # PERF: SQLite's own busy handler sleeps 1, 2, 5, 10 ms... while another process holds the write lock
            # (a transaction of ~0.1 ms), and inline that sleep stalls the event loop; ``_call_locked`` retries
            # the whole operation after 50 µs, doubling up to 2 ms, until ``busy_timeout`` instead.
            conn.execute("PRAGMA busy_timeout = 0")
        # WAL with synchronous=NORMAL: commits survive a process crash, skip an fsync each.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        self._conn = conn
        return conn

    def _close_connection(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _migrate(self, conn: sqlite3.Connection) -> list[int]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        current = _current_version(conn)
        if current > self.latest_version:
            raise StorageError(
                f"The SQLite database {self._path} is at schema version {current}, newer than this apipod "
                f"knows ({self.latest_version}); upgrade apipod or use another database."
            )
        applied = []
        for migration in self._migrations:
            with immediate(conn):
                # Re-read inside the write lock: another process may have migrated meanwhile.
                if migration.version <= _current_version(conn):
                    continue
                for statement in statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, to_text(datetime.now(UTC))),
                )
            applied.append(migration.version)
        return applied


def _create_private(path: str) -> None:
    """Create the database file 0600 before SQLite does (it would use 0644). SQLite gives the -wal and -shm
    files the database file's mode, so they are private too. An existing file keeps its mode."""
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError:
        # NOTE: sqlite3.connect reports an unusable path better (as a StorageError).
        return


def _current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    if exists.fetchone() is None:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])


_FIRST_PAUSE = 0.00005
_LAST_PAUSE = 0.002


class _BusyError(Exception):
    """Another process holds the write lock; the operation was rolled back and may run again."""


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            # NOTE: the original error is the one worth reporting; a failed rollback leaves SQLite's own
            # automatic rollback in charge.
            return
