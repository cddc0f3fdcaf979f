"""The WAL is checkpointed by a thread of its own: a request's commit never pays for it, and the log does
not grow without bound."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from apipod.adapters.sqlite import SqliteDatabase
from apipod.adapters.sqlite.checkpointer import WalCheckpointer

ROWS = 400
ROW = "x" * 1000  # about 400 KB in all


def fill(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS filler (body TEXT)")
    for _ in range(ROWS):
        conn.execute("INSERT INTO filler VALUES (?)", (ROW,))


def wait_for_size(path: Path, at_least: int, seconds: float = 3.0) -> int:
    deadline = time.monotonic() + seconds
    while os.path.getsize(path) < at_least and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.path.getsize(path)


async def test_commits_leave_checkpoints_to_the_thread_and_it_makes_them(tmp_path: Path) -> None:
    path = tmp_path / "apipod.db"
    db = SqliteDatabase(path, migrations=())
    try:
        assert await db.run(lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]) == 0
        await db.run(fill)  # autocommit: one transaction per row, as requests commit
        # The rows reach the database file itself (not only the log) without any commit checkpointing.
        assert wait_for_size(path, ROWS * len(ROW)) >= ROWS * len(ROW)
    finally:
        await db.close()


def test_without_the_thread_the_rows_would_stay_in_the_log(tmp_path: Path) -> None:
    """The control: with automatic checkpoints off and no thread, nothing moves the rows out of the log."""
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        fill(conn)
        assert wait_for_size(path, ROWS * len(ROW), seconds=0.5) < ROWS * len(ROW)
    finally:
        conn.close()


class Recorder:
    """A connection that answers PASSIVE with ``frames`` frames in the log and records what it was asked."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.asked: list[str] = []

    def execute(self, sql: str) -> sqlite3.Cursor:
        self.asked.append(sql)
        plain = sqlite3.connect(":memory:")
        return plain.execute("SELECT 0, ?, ?", (self.frames, self.frames))


@pytest.mark.parametrize(("frames", "restarts"), [(255, False), (256, True), (100_000, True)])
def test_past_the_threshold_the_log_is_made_to_start_over(frames: int, restarts: bool) -> None:
    """PASSIVE checkpoints alone never let the log restart under a steady stream of commits (every pass finds
    new frames: 2.4 GB of log in 50 s at 1,000 requests a second); past ``restart_frames`` a RESTART does."""
    conn = Recorder(frames)
    WalCheckpointer("unused.db", restart_frames=256).tick(conn)  # type: ignore[arg-type]
    expected = ["PRAGMA wal_checkpoint(PASSIVE)"] + (["PRAGMA wal_checkpoint(RESTART)"] if restarts else [])
    assert conn.asked == expected


def test_a_busy_database_is_tried_again_at_the_next_tick() -> None:
    class Busy:
        def execute(self, sql: str) -> sqlite3.Cursor:
            raise sqlite3.OperationalError("database is locked")

    WalCheckpointer("unused.db").tick(Busy())  # type: ignore[arg-type]  # no exception: the thread lives on
