"""PostgreSQL going away, under a real ``apipod serve`` process (reliability issue 9).

apipod reaches its database through a TCP proxy the test controls (tests/integration/tcp_proxy.py), which can
refuse new connections and reset the open ones, then accept again on the same port.

- Unreachable at start: the process waits (one clear line per attempt, no traceback, growing pauses), is
  not ready meanwhile, and serves once the database answers.
- Down for 10 s mid-traffic: every request is either served or answered 503 in its own dialect; once the
  database is back, every served request has its usage row (none lost), nothing is held (a one-at-a-time
  plan serves at once) and no database connection is leaked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, PostgresDatabase, catalog, model, plan, provider
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.postgres

PG_HOST, PG_PORT = "127.0.0.1", 5432
OUTAGE = 10.0
CLIENT_TIMEOUT = 20.0


def gateway_catalog(url: str) -> str:
    return catalog(
        provider("up", "openai", url + "/v1"),
        models=[model("mini", "up", "gpt-4o-mini")],
        plans=[plan("open", {"mini": 1}), plan("single", {"mini": 1}, extra="max_concurrency = 1\n")],
    )


@pytest.fixture
def db() -> Iterator[PostgresDatabase]:
    with PostgresDatabase(prefix="apipod_outage") as database:
        yield database


def proxied(db: PostgresDatabase, proxy: TcpProxy) -> str:
    return f"postgresql://postgres@127.0.0.1:{proxy.port}/{db.name}"


async def _fetchval(dsn: str, query: str) -> Any:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


def fetchval(dsn: str, query: str) -> Any:
    """One value straight from the database (not through the proxy)."""
    return asyncio.run(_fetchval(dsn, query))


def ready(gateway: ApipodProcess) -> bool:
    """Ready to serve: ``/health/ready`` says so, or, where the process has no readiness route yet, ``/health``
    answers (a process still starting accepts no connection at all)."""
    try:
        answer = httpx.get(f"{gateway.url}/health/ready", timeout=1)
        if answer.status_code == 404:
            answer = httpx.get(f"{gateway.url}/health", timeout=1)
    except httpx.TransportError:
        return False
    return answer.status_code == 200


def test_unreachable_at_start_waits_with_backoff_then_serves(tmp_path: Path, db: PostgresDatabase) -> None:
    with serve(FakeOpenAI()) as url, TcpProxy(PG_HOST, PG_PORT, listening=False) as proxy:
        gateway = ApipodProcess(catalog=gateway_catalog(url), tmp=tmp_path, database_url=proxied(db, proxy))
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                started = pool.submit(gateway.start, 30.0)
                time.sleep(3.0)  # the database stays away for 3 s
                assert gateway.process is not None
                if gateway.process.poll() is not None:
                    pytest.fail(
                        "apipod exited while PostgreSQL was unreachable instead of waiting for it "
                        "(bootstrap.wait_for_store is not called at start-up yet):\n" + gateway.log()
                    )
                assert not ready(gateway), "ready before the database answered"
                waiting = gateway.log()
                proxy.listen()
                started.result(30)

            lines = [line for line in waiting.splitlines() if "PostgreSQL" in line and "not reachable" in line]
            assert len(lines) >= 2, f"expected one line per attempt:\n{waiting}"
            assert f"127.0.0.1:{proxy.port}/{db.name}" in lines[0]  # names what it waits for
            assert "Traceback" not in gateway.log()
            assert ready(gateway)
            key = gateway.create_key("open")
            answer = httpx.post(
                f"{gateway.url}/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                timeout=CLIENT_TIMEOUT,
            )
            assert answer.status_code == 200, answer.text
            assert len(gateway.wait_usage(1)) == 1
        finally:
            proxy.listen()
            gateway.stop()


# -- down for 10 s mid-traffic ------------------------------------------------------------------------------


def one_request(gateway: ApipodProcess, key: str, n: int) -> tuple[int, str, Any]:
    """(status, dialect, parsed body) of one request; even ``n`` speak OpenAI, odd ``n`` Anthropic."""
    text = [{"role": "user", "content": f"request {n}"}]
    if n % 2 == 0:
        dialect = "openai"
        answer = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "m", "messages": text},
            timeout=CLIENT_TIMEOUT,
        )
    else:
        dialect = "anthropic"
        answer = httpx.post(
            f"{gateway.url}/v1/messages",
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
            json={"model": "m", "max_tokens": 50, "messages": text},
            timeout=CLIENT_TIMEOUT,
        )
    try:
        body = answer.json()
    except ValueError:
        body = answer.text
    return answer.status_code, dialect, body


def in_dialect(dialect: str, body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    if dialect == "openai":
        return isinstance(body.get("error"), dict) and body["error"].get("type") == "server_error"
    return body.get("type") == "error" and body.get("error", {}).get("type") in {"api_error", "overloaded_error"}


def test_down_for_ten_seconds_mid_traffic_loses_no_usage_row(tmp_path: Path, db: PostgresDatabase) -> None:
    with serve(FakeOpenAI()) as url, TcpProxy(PG_HOST, PG_PORT) as proxy:
        gateway = ApipodProcess(catalog=gateway_catalog(url), tmp=tmp_path, database_url=proxied(db, proxy))
        with gateway:
            key = gateway.create_key("open")
            single = gateway.create_key("single")
            stop = threading.Event()
            results: list[tuple[int, str, Any]] = []
            phases: list[str] = []
            counter = iter(range(1_000_000))

            def worker() -> None:
                while not stop.is_set():
                    n = next(counter)
                    phase = "down" if not proxy.listening else "up"
                    result = one_request(gateway, key, n)
                    results.append(result)
                    phases.append(phase)

            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                workers = [pool.submit(worker) for _ in range(4)]
                time.sleep(2.0)
                proxy.cut()
                time.sleep(OUTAGE)
                proxy.listen()
                time.sleep(3.0)
                stop.set()
                for done in workers:
                    done.result(CLIENT_TIMEOUT + 5)

            statuses = Counter(status for status, _, _ in results)
            served = statuses[200]
            down = [r for r, phase in zip(results, phases, strict=True) if phase == "down"]
            during = Counter(r[0] for r in down)
            print(f"outage: {len(results)} requests, {statuses}; {len(down)} sent while down: {during}")
            assert served > 0 and down, (statuses, len(down))
            for status, dialect, body in results:
                assert status == 200 or (status == 503 and in_dialect(dialect, body)), (status, dialect, body)

            # Every served request has its row once the database is back; none lost, none doubled.
            direct = db.dsn
            deadline = time.monotonic() + 30
            written = fetchval(direct, "SELECT count(*) FROM usage_logs WHERE status = 'success'")
            while written < served and time.monotonic() < deadline:
                time.sleep(0.2)
                written = fetchval(direct, "SELECT count(*) FROM usage_logs WHERE status = 'success'")
            assert written == served, f"{served} requests served, {written} success rows ({statuses})"

            # Nothing held: the one-at-a-time plan serves at once.
            started = time.monotonic()
            status, _, body = one_request(gateway, single, 0)
            assert status == 200, body
            assert time.monotonic() - started < 2.0

            # No connection leaked: the pool's size at most (10) plus the key-change listener.
            connections = fetchval(
                direct,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            assert connections <= 11, connections
            assert proxy.open_connections() <= 11
