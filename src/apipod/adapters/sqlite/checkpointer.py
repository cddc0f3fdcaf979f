"""WAL checkpoints on a thread of their own, off the event loop.

SQLite checkpoints the write-ahead log automatically, inside whichever commit crosses 1000 pages, and with
``synchronous = NORMAL`` a checkpoint syncs the log and the database file. apipod runs its statements on
the event loop (``SqliteDatabase(inline=True)``), so that commit, a request's quota reservation, stalled
every request of the process for the length of two fsyncs: the tail of the latency distribution. Here the
serving connection never checkpoints (``wal_autocheckpoint = 0``) and this thread runs a PASSIVE checkpoint
every ``interval`` on its own connection: it never blocks a writer, the sqlite3 module releases the GIL while
it works, and a busy checkpoint (another process's) is simply tried again at the next tick.

A PASSIVE checkpoint alone never lets the log start over: writers append while it copies, so it never finds
every frame copied, and the log would grow without end (2.4 GB in 50 s at 1,000 requests a second). Once the
log is past ``restart_frames``, the thread asks for a RESTART checkpoint: PASSIVE has already copied nearly
everything, so it holds the write lock only for the last frames and a sync, then the log starts over (and is
cut back to ``journal_size_limit``). It waits at most ``RESTART_WAIT_SECONDS`` for the write lock (writers
wait for it meanwhile); if it cannot have it, it tries again at the next tick.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("apipod")

INTERVAL_SECONDS = 0.1
"""At 1,000 requests per second the log grows by about 45 MB a second."""
RESTART_WAIT_SECONDS = 0.01
RESTART_FRAMES = 16_384
"""64 MiB of 4 KiB pages: the log starts over about once a second and a half at that rate."""


class WalCheckpointer:
    __slots__ = ("_interval", "_path", "_restart_frames", "_stop", "_thread")

    def __init__(self, path: str, *, interval: float = INTERVAL_SECONDS, restart_frames: int = RESTART_FRAMES) -> None:
        self._path = path
        self._interval = interval
        self._restart_frames = restart_frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="apipod-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ends the thread after its current checkpoint; the last connection's close checkpoints the rest."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def tick(self, conn: sqlite3.Connection) -> None:
        """One pass: PASSIVE, then RESTART when the log is past ``restart_frames``."""
        try:
            _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames >= self._restart_frames:
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
        except sqlite3.Error as exc:  # busy or locked: the next tick tries again
            log.debug("WAL checkpoint skipped: %s", exc)

    def _run(self) -> None:
        # A short busy wait: PASSIVE never waits; RESTART waits this long for the writers between two commits.
        conn = sqlite3.connect(self._path, timeout=RESTART_WAIT_SECONDS, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                self.tick(conn)
        finally:
            conn.close()
