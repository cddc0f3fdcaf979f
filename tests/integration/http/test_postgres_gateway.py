"""Issue 3 end to end: two ``apipod serve`` processes on one fresh PostgreSQL database, over real sockets.

- several hundred concurrent requests against one key whose budget admits far fewer: exactly the budget's
  worth succeed, the rest get OpenAI's 429 ``insufficient_quota``, and the ledger equals the usage rows;
- streams cancelled by their client and streams cut by their upstream leave no pending reservation, and
  what the ledger charged equals the usage rows;
- a killed process leaves pending reservations that the other process's sweeper releases after expiry;
- a key revoked through one process stops working on the other within a second.

Without a reachable PostgreSQL these tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.fakes.fake_openai import FakeOpenAI, openai_frames
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, PostgresDatabase, catalog, model, plan, provider

pytestmark = pytest.mark.postgres

BUDGET = 40
REQUESTS_PER_PROCESS = 150
# One window counting both requests and tokens: its counter row holds the request count the budget
# limits and every token charged, which the usage rows must add up to.
BUDGETS = f'budgets = [{{ window = "day", requests = {BUDGET}, tokens = 100000000 }}]'


def gateway_catalog(upstream_url: str) -> str:
    return catalog(
        provider("up", "openai", upstream_url + "/v1"),
        models=[model("mini", "up", "gpt-4o-mini")],
        plans=[plan("metered", {"mini": 1}, extra=BUDGETS), plan("open", {"mini": 1})],
    )


@pytest.fixture
def db() -> Iterator[PostgresDatabase]:
    """A fresh database per test (created outside the test's event loop)."""
    with PostgresDatabase() as database:
        yield database


@contextlib.contextmanager
def two_processes(
    db: PostgresDatabase,
    tmp: Path,
    toml: str,
    env_a: dict[str, str] | None = None,
    env_b: dict[str, str] | None = None,
) -> Iterator[tuple[ApipodProcess, ApipodProcess]]:
    """Two gateways on one database; the first migrates it, the second starts after."""
    with (
        ApipodProcess(catalog=toml, tmp=tmp, database_url=db.dsn, env=env_a, name="a") as a,
        ApipodProcess(catalog=toml, tmp=tmp, database_url=db.dsn, env=env_b, name="b") as b,
    ):
        yield a, b


def new_key(gateway: ApipodProcess, tier: str) -> tuple[str, str]:
    """(key id, secret) of a fresh key on ``tier``."""
    answer = httpx.post(
        f"{gateway.url}/admin/create-key",
        headers=gateway.admin,
        json={"name": f"holder-{uuid.uuid4().hex[:8]}", "tier": tier},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"]), str(answer.json()["api_key"])


def chat(text: str = "hello there", *, stream: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def slow_text_frames(words: int) -> list[bytes]:
    """An OpenAI stream of ``words`` one-word chunks, then finish, usage and ``[DONE]``."""
    head = {"id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 1727346142, "model": "gpt-4o-mini"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks: list[Any] = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": f"word{i} "}) for i in range(words)]
    chunks.append(chunk({}, "stop"))
    chunks.append({**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": words}})
    return openai_frames(chunks)


async def read_content_then_close(client: httpx.AsyncClient, url: str, key: str, chunks: int) -> int:
    """Open a stream, read ``chunks`` content chunks (or to the end), then close the connection."""
    seen = 0
    async with client.stream(
        "POST", url + "/v1/chat/completions", json=chat(stream=True), headers={"authorization": f"Bearer {key}"}
    ) as answer:
        assert answer.status_code == 200, await answer.aread()
        async for line in answer.aiter_lines():
            if '"content":"word' in line:
                seen += 1
                if seen >= chunks:
                    break
    return seen


async def poll(query: Any, predicate: Any, timeout: float) -> Any:
    """``await query()`` until ``predicate(value)`` or ``timeout``; the last value."""
    deadline = time.monotonic() + timeout
    value = await query()
    while not predicate(value) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = await query()
    return value


class Ledger:
    """Direct reads of the ledger and usage tables."""

    def __init__(self, conn: asyncpg.Connection, key_id: str) -> None:
        self.conn = conn
        self.key_id = key_id

    async def reservations(self) -> dict[str, int]:
        rows = await self.conn.fetch(
            "SELECT state, count(*) AS n FROM quota_reservations WHERE key_id = $1 GROUP BY state", self.key_id
        )
        return {r["state"]: int(r["n"]) for r in rows}

    async def window(self) -> tuple[int, int]:
        """(tokens, requests) of the key's day window; (0, 0) before the first reservation."""
        row = await self.conn.fetchrow(
            "SELECT tokens, requests FROM quota_windows WHERE key_id = $1 AND window_name = 'day'", self.key_id
        )
        return (int(row["tokens"]), int(row["requests"])) if row else (0, 0)

    async def usage_rows(self) -> list[asyncpg.Record]:
        return list(
            await self.conn.fetch(
                "SELECT status, token_count, input_tokens, output_tokens FROM usage_logs WHERE key_id = $1",
                self.key_id,
            )
        )

    async def wait_usage_rows(self, count: int, timeout: float = 15.0) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await poll(self.usage_rows, lambda rows: len(rows) >= count, timeout)
        return rows


async def test_two_processes_admit_exactly_the_budget_and_the_ledger_equals_the_usage_rows(
    db: PostgresDatabase, tmp_path: Path
) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url, two_processes(db, tmp_path, gateway_catalog(upstream_url)) as (a, b):
        key_id, key = new_key(a, "metered")
        limits = httpx.Limits(max_connections=2 * REQUESTS_PER_PROCESS + 10)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:

            async def one(gateway: ApipodProcess, n: int) -> tuple[str, httpx.Response]:
                answer = await client.post(
                    gateway.url + "/v1/chat/completions",
                    json=chat(f"request number {n}"),
                    headers={"authorization": f"Bearer {key}"},
                )
                return gateway.url, answer

            # One request through each process first (pools and caches warm, both counted), then the race.
            results = [await one(a, 0), await one(b, 0)]
            assert [r.status_code for _, r in results] == [200, 200]
            calls = [one(gw, n) for n in range(1, REQUESTS_PER_PROCESS) for gw in (a, b)]
            results += await asyncio.gather(*calls)

        served = [(url, r) for url, r in results if r.status_code == 200]
        refused = [(url, r) for url, r in results if r.status_code != 200]
        outcomes = Counter((r.status_code, r.text[:160]) for _, r in refused)
        assert len(served) == BUDGET, (len(served), outcomes)
        assert len(refused) == 2 * REQUESTS_PER_PROCESS - BUDGET
        assert {url for url, _ in refused} == {a.url, b.url}  # both processes ran into the one budget
        for _, answer in refused:
            assert answer.status_code == 429
            assert answer.headers["content-type"].startswith("application/json")
            error = answer.json()["error"]
            assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota"), error
            assert "day" in error["message"]
            assert 1 <= int(answer.headers["retry-after"]) <= 86_400
        assert len(fake.requests) == BUDGET  # refused requests never reached the upstream

        conn = await asyncpg.connect(db.dsn)
        try:
            ledger = Ledger(conn, key_id)
            rows = await ledger.wait_usage_rows(2 * REQUESTS_PER_PROCESS)
            assert len(rows) == 2 * REQUESTS_PER_PROCESS
            statuses = sorted(r["status"] for r in rows)
            assert statuses.count("success") == BUDGET
            assert statuses.count("quota_exceeded") == 2 * REQUESTS_PER_PROCESS - BUDGET
            charged = sum(int(r["token_count"]) for r in rows)
            assert charged == sum(r.json()["usage"]["total_tokens"] for _, r in served)
            assert charged > 0
            # every hold closed (a lease lingers a moment for a next request, then closes by itself); served
            # from budget leases (QUOTA_LEASE_SECONDS), so fewer rows than requests
            states = await poll(ledger.reservations, lambda states: set(states) == {"settled"}, 5)
            (closed,) = states.items()
            assert await ledger.window() == (charged, BUDGET)
            assert closed[0] == "settled"
            assert 1 <= closed[1] <= BUDGET
        finally:
            await conn.close()


async def test_cancelled_and_broken_streams_leave_no_reservation_and_the_ledger_equals_the_usage_rows(
    db: PostgresDatabase, tmp_path: Path
) -> None:
    cancelled_per_process, broken_per_process, whole_per_process = 10, 5, 3
    fake = FakeOpenAI()
    with serve(fake) as upstream_url, two_processes(db, tmp_path, gateway_catalog(upstream_url)) as (a, b):
        key_id, key = new_key(a, "metered")
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=100)) as client:
            # Client goes away after two content chunks of a slow 30-word stream.
            for _ in range(2 * cancelled_per_process):
                fake.reply_sse(slow_text_frames(30), delay=0.1)
            cancelled = await asyncio.gather(
                *[read_content_then_close(client, gw.url, key, 2) for gw in (a, b) * cancelled_per_process]
            )
            assert cancelled == [2] * (2 * cancelled_per_process)
            # The upstream drops the connection after five frames (role chunk and four words).
            for _ in range(2 * broken_per_process):
                fake.reply_sse(slow_text_frames(30), delay=0.02, cut_after=5)
            broken = await asyncio.gather(
                *[read_content_then_close(client, gw.url, key, 1000) for gw in (a, b) * broken_per_process]
            )
            assert broken == [4] * (2 * broken_per_process)
            # And a few streams read to their end, for contrast.
            for _ in range(2 * whole_per_process):
                fake.reply_sse(slow_text_frames(3))
            whole = await asyncio.gather(
                *[read_content_then_close(client, gw.url, key, 1000) for gw in (a, b) * whole_per_process]
            )
            assert whole == [3] * (2 * whole_per_process)

        total = 2 * (cancelled_per_process + broken_per_process + whole_per_process)
        assert await fake.wait_for(lambda: sum(o.disconnected for o in fake.outcomes) >= 2 * cancelled_per_process)
        conn = await asyncpg.connect(db.dsn)
        try:
            ledger = Ledger(conn, key_id)
            rows = await ledger.wait_usage_rows(total)
            assert len(rows) == total
            statuses = [r["status"] for r in rows]
            assert statuses.count("cancelled") == 2 * cancelled_per_process, statuses
            assert statuses.count("upstream_error") == 2 * broken_per_process, statuses
            assert statuses.count("success") == 2 * whole_per_process, statuses
            for row in rows:  # output was produced in every one of them, so each costs its (estimated) usage
                assert row["output_tokens"] > 0 and row["input_tokens"] > 0, dict(row)
                assert row["token_count"] == row["input_tokens"] + row["output_tokens"]
            # every hold (budget lease) closed, a lingering one a moment after its last request
            assert set(await poll(ledger.reservations, lambda states: set(states) == {"settled"}, 5)) == {"settled"}
            charged = sum(int(r["token_count"]) for r in rows)
            assert await ledger.window() == (charged, total)
        finally:
            await conn.close()


async def test_a_killed_process_leaves_holds_that_the_other_process_sweeps_after_expiry(
    db: PostgresDatabase, tmp_path: Path
) -> None:
    ttl = 3.0
    held = 6
    fake = FakeOpenAI()
    # a reserves with a short hold and never sweeps (it is killed anyway); b sweeps often.
    env_a = {"RESERVATION_TTL_SECONDS": str(ttl), "SWEEP_INTERVAL_SECONDS": "600"}
    env_b = {"RESERVATION_TTL_SECONDS": str(ttl), "SWEEP_INTERVAL_SECONDS": "0.25"}
    with (
        serve(fake) as upstream_url,
        two_processes(db, tmp_path, gateway_catalog(upstream_url), env_a, env_b) as (a, b),
    ):
        key_id, key = new_key(a, "metered")
        conn = await asyncpg.connect(db.dsn)
        try:
            ledger = Ledger(conn, key_id)
            for _ in range(held):
                # The role chunk and a first word at once (apipod answers on the first content), then silence.
                frames = slow_text_frames(5)
                fake.reply_sse([frames[0] + frames[1], *frames[2:]], delay=60)
            async with httpx.AsyncClient(timeout=30) as client, contextlib.AsyncExitStack() as open_streams:
                streams = [
                    await open_streams.enter_async_context(
                        client.stream(
                            "POST",
                            a.url + "/v1/chat/completions",
                            json=chat(stream=True),
                            headers={"authorization": f"Bearer {key}"},
                        )
                    )
                    for _ in range(held)
                ]
                assert [s.status_code for s in streams] == [200] * held
                # a's holds: budget leases (QUOTA_LEASE_SECONDS), one row serving several requests
                pending = await ledger.reservations()
                assert set(pending) == {"pending"} and 1 <= pending["pending"] <= held, pending
                killed_at = time.monotonic()
                a.kill()

            assert await fake.wait_for(lambda: sum(o.disconnected for o in fake.outcomes) == held)
            tokens, requests = await ledger.window()
            assert requests >= held and tokens > 0  # the crashed process's holds are still counted
            assert await ledger.reservations() == pending  # nothing released them yet

            expired = {"expired": pending["pending"]}
            swept = await poll(ledger.reservations, lambda states: states == expired, ttl + 5)
            assert swept == expired
            assert time.monotonic() - killed_at >= ttl - 0.5  # not before they expired
            late = await conn.fetchval(
                "SELECT count(*) FROM quota_reservations WHERE key_id = $1 AND closed_at < expires_at", key_id
            )
            assert late == 0
            assert await ledger.window() == (0, 0)  # every hold given back: nothing was spent
            # The budget is whole again: b serves the key.
            answer = httpx.post(
                b.url + "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {key}"}, timeout=10
            )
            assert answer.status_code == 200, answer.text
        finally:
            await conn.close()


def test_a_key_revoked_through_one_process_is_refused_by_the_other_within_a_second(
    db: PostgresDatabase, tmp_path: Path
) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url, two_processes(db, tmp_path, gateway_catalog(upstream_url)) as (a, b):
        key_id, key = new_key(a, "open")
        headers = {"authorization": f"Bearer {key}"}
        assert httpx.get(b.url + "/v1/models", headers=headers).status_code == 200  # b has it cached now

        revoked = httpx.post(f"{a.url}/admin/keys/{key_id}/revoke", headers=a.admin)
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["active"] is False
        start = time.monotonic()
        assert httpx.get(a.url + "/v1/models", headers=headers).status_code == 403
        while (answer := httpx.get(b.url + "/v1/models", headers=headers)).status_code == 200:
            assert time.monotonic() - start < 1.0, "b still accepts the revoked key after a second"
            time.sleep(0.01)
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "permission_denied"
        refused = httpx.post(b.url + "/v1/chat/completions", json=chat(), headers=headers)
        assert refused.status_code == 403
        assert fake.requests == []
