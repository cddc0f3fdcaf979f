"""What the benchmark scripts share: ports, the CPU time and memory of a process tree, starting `apipod serve`
with a catalog and waiting for it, and the admin secret that creates the benchmark's key.

The scripts directory is not a package: the scripts put it on ``sys.path`` and ``import bench_common``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-admin-secret-0123456789"
CLK_TCK = os.sysconf("SC_CLK_TCK")


DATABASE_HELP = "apipod's database: an empty PostgreSQL database (migrated at start); default a fresh SQLite file"


def free_port() -> int:
    """A port the OS just handed out, so parallel runs and leftovers do not collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


def cpu_seconds(pid: int) -> float:
    """The CPU time of ``pid`` and of its live descendants (the workers of ``apipod serve --workers N``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / CLK_TCK
    for child in _children(pid):
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile
            total += cpu_seconds(child)
    return total


def rss_mb(pid: int) -> float:
    """The largest resident set among ``pid`` and its live descendants (per process: the target is per process)."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    largest = int(found.group(1)) / 1024 if found else 0.0
    for child in _children(pid):
        with contextlib.suppress(FileNotFoundError):
            largest = max(largest, rss_mb(child))
    return largest


def wait_ready(url: str, processes: Sequence[subprocess.Popen[bytes]], attempts: int = 300) -> None:
    """Polls ``url`` until it answers below 500; stops early when a process of the run has died (its own
    output, above, says why) instead of polling a port nobody will open."""
    for _ in range(attempts):
        if any(p.poll() is not None for p in processes):
            raise SystemExit("a process of the benchmark exited at start (its output is above)")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        time.sleep(0.05)
    raise SystemExit(f"{url} did not come up")


@contextlib.contextmanager
def running(
    command: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """A process for the length of the block: terminated and reaped on the way out, errors included."""
    process = subprocess.Popen(list(command), env=env, cwd=cwd)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(15)


def apipod(
    stack: contextlib.ExitStack,
    tmp: Path,
    catalog: str,
    port: int,
    workers: str,
    *args: str,
    prefix: Sequence[str] = (),
    database_url: str | None = None,
    **env: str,
) -> subprocess.Popen[bytes]:
    """``apipod serve`` on ``port`` over a fresh SQLite database in ``tmp`` (or ``database_url``, an empty
    PostgreSQL database, migrated at start), with ``catalog`` (TOML) and the benchmark's admin secret; ``env``
    adds settings (``HTTP_TRANSPORT``, ``APIPOD_GC_REPORT``). ``stack`` stops it. ``args`` go on the command
    line; ``prefix`` runs it under another command (valgrind)."""
    (tmp / "catalog.toml").write_text(catalog)
    if database_url is not None:
        args = ("--migrate", *args)
    settings = {
        **os.environ,
        "DATABASE_URL": database_url or f"sqlite:///{tmp}/bench.db",
        "ADMIN_SECRET": SECRET,
        "APIPOD_CONFIG": str(tmp / "catalog.toml"),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    command = [*prefix, sys.executable, "-m", "apipod", "serve", "--workers", workers, *args]
    return stack.enter_context(running(command, env=settings, cwd=tmp))


def create_key(base: str) -> str:
    """A key on the catalog's ``bench`` plan, made through the admin API as an operator would."""
    answer = httpx.post(
        f"{base}/admin/create-key",
        headers={"x-admin-secret": SECRET},
        json={"name": "bench", "tier": "bench"},
    )
    answer.raise_for_status()
    return str(answer.json()["api_key"])
