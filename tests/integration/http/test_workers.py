"""``apipod serve --workers N``: several processes on one port and one SQLite file, one budget kept exactly,
a crashed worker replaced, and a graceful stop of them all with every usage row written."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

BUDGET = 60
REQUESTS = 160


def workers_of(supervisor: int) -> list[int]:
    """The supervisor's worker processes (its other child is multiprocessing's resource tracker)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def usage_statuses(tmp: Path) -> dict[str, int]:
    with sqlite3.connect(tmp / "apipod.db") as conn:
        rows = conn.execute("SELECT status, count(*) FROM usage_records GROUP BY status").fetchall()
    return {str(status): int(count) for status, count in rows}


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOpenAI, str]]:
    fake = FakeOpenAI()
    with serve(fake) as url:
        yield fake, url


def gateway(tmp: Path, upstream_url: str) -> ApipodProcess:
    budget = f'budgets = [{{ window = "day", requests = {BUDGET} }}]'
    toml = catalog(
        provider("up", "openai", upstream_url + "/v1"),
        models=[model("mini", "up", "gpt-4o-mini")],
        plans=[plan("metered", {"mini": 1}, extra=budget)],
    )
    return ApipodProcess(catalog=toml, tmp=tmp, args=("--workers", "2"))


async def race(url: str, key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        body = {"model": "mini", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {key}"}
        calls = [client.post(url + "/v1/chat/completions", json=body, headers=headers) for _ in range(count)]
        return await asyncio.gather(*calls)


def test_two_workers_share_the_port_and_keep_one_budget_exactly(
    tmp_path: Path, upstream: tuple[FakeOpenAI, str]
) -> None:
    fake, url = upstream
    apipod = gateway(tmp_path, url).start()
    assert apipod.process is not None
    try:
        workers = workers_of(apipod.process.pid)
        assert len(workers) == 2, workers
        assert "without REDIS_URL" in apipod.log()  # limits other than budgets are per process: said at start
        before = {pid: cpu_ticks(pid) for pid in workers}
        key = apipod.create_key("metered")
        answers = asyncio.run(race(apipod.url, key, REQUESTS))
        statuses = [a.status_code for a in answers]
        assert statuses.count(200) == BUDGET, sorted(set(statuses))
        assert statuses.count(429) == REQUESTS - BUDGET
        assert len(fake.requests) == BUDGET  # refused requests never reached the upstream
        used = {pid: cpu_ticks(pid) - before[pid] for pid in workers}
        assert all(ticks > 0 for ticks in used.values()), used  # both workers served
    finally:
        apipod.stop()
    assert apipod.process.returncode == 0, apipod.log()
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    # One row per request that reached the quota, every one flushed by the stop.
    assert usage_statuses(tmp_path) == {"success": BUDGET, "quota_exceeded": REQUESTS - BUDGET}


def test_a_crashed_worker_is_replaced(tmp_path: Path, upstream: tuple[FakeOpenAI, str]) -> None:
    _, url = upstream
    with gateway(tmp_path, url) as apipod:
        assert apipod.process is not None
        first = workers_of(apipod.process.pid)
        time.sleep(5.5)  # past start-up: a death now is a crash to recover from, not a configuration error
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = workers_of(apipod.process.pid)
            if len(now) == 2 and first[0] not in now:
                break
            time.sleep(0.1)
        assert len(now) == 2 and first[0] not in now and first[1] in now, (first, now)
        key = apipod.create_key("metered")
        assert httpx.post(
            apipod.url + "/v1/chat/completions",
            json={"model": "mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        ).is_success
        assert "while serving: starting another" in apipod.log()


def test_an_occupied_port_is_an_error_not_a_shared_one(tmp_path: Path) -> None:
    """SO_REUSEPORT would let the workers join another server's port; the supervisor refuses instead."""
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        apipod = ApipodProcess(catalog="", tmp=tmp_path, env={"PORT": str(port)}, args=("--workers", "2"))
        with pytest.raises(RuntimeError, match=f"cannot listen on 127.0.0.1:{port}: Address already in use"):
            apipod.start()


def test_an_in_memory_database_cannot_have_workers(tmp_path: Path) -> None:
    apipod = ApipodProcess(catalog="", tmp=tmp_path, database_url="sqlite:///:memory:", args=("--workers", "2"))
    with pytest.raises(RuntimeError, match="in-memory database cannot be shared"):
        apipod.start()
