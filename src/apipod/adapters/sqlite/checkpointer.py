"""WAL checkpoints on a thread of their own, off the event loop.

SQLite checkpoints the write-ahead log automatically, inside whichever commit crosses 1000 pages, and with
``synchronous = NORMAL`` a checkpoint syncs the log and the database file. apipod runs its statements on
the event loop (``SqliteDatabase(inline=True)``), so that commit, a request's quota reservation, stalled
every request of the process for the length of two fsyncs: the tail of the latency distribution. Here the
serving connection never checkpoints (``wal_autocheckpoint = 0``) and this thread runs a PASSIVE checkpoint
every ``interval`` on its own connection: it never blocks a writer, the sqlite3 module releases the GIL while
it works, and a busy checkpoint (another process's) is simply tried again at the next tick.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("apipod")

INTERVAL_SECONDS = 0.25
"""At 1,000 requests per second the log grows by about 14 MB a second; a quarter of a second keeps it small."""


class WalCheckpointer:
    __slots__ = ("_interval", "_path", "_stop", "_thread")

    def __init__(self, path: str, *, interval: float = INTERVAL_SECONDS) -> None:
        self._path = path
        self._interval = interval
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

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked: the next tick tries again
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()
