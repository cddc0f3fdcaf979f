"""``apipod serve --workers N``: N processes serving one port, supervised by the process that was started.

Python runs one core per process, so this is how apipod uses every core. The supervisor prepares what must
happen once (admin secret, secret key file, migrations, the configured catalog), binds the port, and starts
each worker with a listening socket of its own (spawned, not forked: no thread or event loop of the supervisor is
copied). Each worker is an ordinary ``apipod serve`` process behind that socket: budgets stay exact across
workers because the database arbitrates; rate limits, concurrency leases and cooldowns are per process unless
``REDIS_URL`` shares them.

Signals: SIGTERM or SIGINT reaches the supervisor, which passes it on to each worker once (workers run in
their own process group, so a terminal's Ctrl-C is not delivered twice); each worker drains and shuts down
as a single process does, and the supervisor exits 0 when all have. A worker that dies while serving is
replaced; one that dies during start-up stops the whole service (a configuration error would loop forever).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from multiprocessing.context import SpawnProcess
from types import FrameType

import attrs

from apipod.bootstrap.runtime import start_runtime
from apipod.bootstrap.settings import ConfigError, Settings

log = logging.getLogger("apipod")

STARTUP_SECONDS = 5.0
"""A worker that exits sooner than this after its start is a start-up failure, not a crash to recover from."""
POLL_SECONDS = 0.2


def worker_count(value: str) -> int:
    """``--workers``: a positive number, or ``auto`` for the cores this process may run on."""
    if value == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(f"--workers: give a number of processes or 'auto', not {value!r}") from None
    if count < 1:
        raise ConfigError(f"--workers: at least 1 process, not {count}")
    return count


def check_workers(settings: Settings, count: int) -> None:
    """Refuses what cannot be shared; warns about what becomes per process."""
    if count > 1 and ":memory:" in settings.database_url:
        raise ConfigError("--workers: an in-memory database cannot be shared by several processes")
    if count > 1 and not settings.redis_url:
        log.warning(
            "%d workers without REDIS_URL: rate limits, concurrency limits and cooldowns are per process "
            "(each worker admits up to the whole limit); budgets stay exact (the database arbitrates)",
            count,
        )


async def prepare(settings: Settings, env: Mapping[str, str]) -> None:
    """Once, before any worker starts: migrations, the secret key file and the configured catalog (workers
    starting together would otherwise race to create them)."""
    runtime = await start_runtime(settings, env)
    await runtime.close()


def _listener(host: str, port: int, *, share: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def bind(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per worker on the same port (SO_REUSEPORT): the kernel spreads new connections
    evenly over them. On one shared socket the worker that wakes first accepts a whole burst, and a client
    that keeps its connections open would be served by one core.

    A plain bind first: SO_REUSEPORT alone would also share the port with another apipod left running
    there, silently splitting its traffic, where an occupied port must be an error."""
    _listener(host, port, share=False).close()
    sockets = [_listener(host, port, share=True) for _ in range(count)]
    for sock in sockets:
        sock.listen(2048)
        sock.set_inheritable(True)
    return sockets


def run_worker(settings: Settings, env: dict[str, str], admin_secret: str, sock: socket.socket) -> None:
    """A worker process's body (the spawn target): an ordinary single-process server on ``sock``."""
    os.setpgrp()  # the supervisor alone passes signals on (see the module's docstring)
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), name="apipod-orphan-watch", daemon=True).start()
    from apipod.entrypoints.cli.logs import configure_logging
    from apipod.entrypoints.cli.server import build_server

    configure_logging(settings.log_level, settings.log_format)
    build_server(settings, env, admin_secret, host="", port=0).run(sockets=[sock])


def _exit_with_parent(parent: int) -> None:
    """A supervisor killed outright cannot pass a signal on: a worker whose parent is gone shuts itself down."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


@attrs.define
class _Worker:
    process: SpawnProcess
    sock: socket.socket
    started: float


class Supervisor:
    """Starts a worker on each socket, replaces crashed ones, and passes shutdown signals on."""

    def __init__(
        self, settings: Settings, env: dict[str, str], admin_secret: str, sockets: list[socket.socket]
    ) -> None:
        self._settings = settings
        self._env = env
        self._secret = admin_secret
        self._sockets = sockets  # one per worker; a replacement takes over its predecessor's
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._signals: list[int] = []

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        for sock in self._sockets:
            self._workers.append(self._start(sock))
        log.warning("apipod is serving with %d worker processes", len(self._sockets))
        passed_on = 0
        status = 0
        while any(w.process.is_alive() for w in self._workers):
            while passed_on < len(self._signals):
                self._pass_on(signal.SIGTERM)
                passed_on += 1
            if not self._signals:
                status = self._replace_dead()
                if status:
                    self._signals.append(signal.SIGTERM)
            time.sleep(POLL_SECONDS)
        for sock in self._sockets:
            sock.close()
        return status

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._signals.append(sig)

    def _start(self, sock: socket.socket) -> _Worker:
        process = self._context.Process(
            target=run_worker, args=(self._settings, self._env, self._secret, sock), name="apipod-worker"
        )
        process.start()
        return _Worker(process, sock, time.monotonic())

    def _pass_on(self, sig: int) -> None:
        for worker in self._workers:
            pid = worker.process.pid
            if pid is not None and worker.process.is_alive():
                os.kill(pid, sig)

    def _replace_dead(self) -> int:
        """Restarts workers that died while serving; a non-zero status when one died during start-up."""
        for i, worker in enumerate(self._workers):
            if worker.process.is_alive():
                continue
            code = worker.process.exitcode
            if time.monotonic() - worker.started < STARTUP_SECONDS:
                log.error("a worker exited during start-up (status %s): stopping the service", code)
                return 1
            log.error("worker %s exited (status %s) while serving: starting another", worker.process.pid, code)
            self._workers[i] = self._start(worker.sock)
        return 0


def serve_workers(
    count: int, settings: Settings, env: dict[str, str], admin_secret: str, *, host: str, port: int
) -> int:
    """``apipod serve --workers N`` with N > 1; returns the exit status."""
    check_workers(settings, count)
    asyncio.run(prepare(settings, env))
    settings = attrs.evolve(settings, migrate_on_start=False)  # done once above
    env = dict(env)
    metrics_dir: str | None = None
    if not settings.prometheus_multiproc_dir:
        # /metrics sums every worker's counters only in prometheus_client's multiprocess mode, which a worker
        # takes from the environment at start.
        metrics_dir = tempfile.mkdtemp(prefix="apipod-metrics-")
        settings = attrs.evolve(settings, prometheus_multiproc_dir=metrics_dir)
        env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        sockets = bind(host, port, count)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        return Supervisor(settings, env, admin_secret, sockets).run()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
