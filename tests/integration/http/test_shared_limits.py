"""Issue 5: limits that hold across processes. Two ``apipod serve`` processes sharing Redis (``REDIS_URL``)
never serve more than a limit together; without Redis each process enforces the limit on its own, so two
processes admit up to twice the limit (the README says so; the contrast test pins it down).

Without a reachable Redis (or PostgreSQL, for the shared key) these tests skip, except under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import serve
from tests.integration.harness import (
    ApipodProcess,
    PostgresDatabase,
    catalog,
    model,
    plan,
    provider,
    redis_url_or_skip,
)

RPM = 25
PER_PROCESS = 100


def rpm_catalog(upstream_url: str, suffix: str, *, model_rpm: int | None = None, plan_rpm: int | None = None) -> str:
    """Names carry ``suffix``: the Redis keys of limits are named after models and upstreams, and a
    minute-long window must not carry over from another test run."""
    limits = {"rpm": model_rpm} if model_rpm is not None else {}
    return catalog(
        provider(f"up-{suffix}", "openai", upstream_url + "/v1"),
        models=[model(f"mini-{suffix}", f"up-{suffix}", "gpt-4o-mini", **limits)],
        plans=[plan("shared", {f"mini-{suffix}": 1}, extra=f"rpm = {plan_rpm}\n" if plan_rpm else "")],
    )


def process(tmp: Path, name: str, toml: str, env: dict[str, str], database_url: str | None = None) -> ApipodProcess:
    home = tmp / name
    home.mkdir(exist_ok=True)
    return ApipodProcess(catalog=toml, tmp=home, env=env, name=name, database_url=database_url)


async def fire(targets: list[tuple[str, str]], count: int) -> list[tuple[str, httpx.Response]]:
    """``count`` requests at each (url, key) target, interleaved, 64 at a time in all (more only slows the
    test client down); (url, answer) of each."""
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=64), timeout=30) as client:

        async def one(url: str, key: str, n: int) -> tuple[str, httpx.Response]:
            body = {"model": "m", "messages": [{"role": "user", "content": f"request {n}"}]}
            answer = await client.post(
                url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
            )
            return url, answer

        return await asyncio.gather(*[one(url, key, n) for n in range(count) for url, key in targets])


async def race(targets: list[tuple[str, str]], count: int) -> list[tuple[str, httpx.Response]]:
    """One request at each target first (each process then has its connections and scripts ready and has
    counted against the limit), then ``count`` more at each, all at once. The answers of all of them."""
    warm = await fire(targets, 1)
    assert [answer.status_code for _, answer in warm] == [200] * len(targets), [a.text for _, a in warm]
    return warm + await fire(targets, count)


def assert_rate_limited(answers: list[httpx.Response]) -> None:
    for answer in answers:
        assert answer.status_code == 429, answer.text
        error = answer.json()["error"]
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded"), error
        assert 1 <= int(answer.headers["retry-after"]) <= 60


@pytest.fixture
def redis_url() -> str:
    return redis_url_or_skip()


@pytest.mark.redis
async def test_two_processes_sharing_redis_serve_exactly_a_model_rpm_together(tmp_path: Path, redis_url: str) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        toml = rpm_catalog(upstream_url, uuid.uuid4().hex[:10], model_rpm=RPM)
        env = {"REDIS_URL": redis_url}
        with process(tmp_path, "a", toml, env) as a, process(tmp_path, "b", toml, env) as b:
            # Each process has its own SQLite database (and key); only Redis is shared.
            results = await race([(a.url, a.create_key("shared")), (b.url, b.create_key("shared"))], PER_PROCESS)

    served = [url for url, answer in results if answer.status_code == 200]
    assert len(served) == RPM, f"{len(served)} served for an rpm of {RPM}"
    assert len(fake.requests) == RPM
    refused = [(url, answer) for url, answer in results if answer.status_code != 200]
    assert_rate_limited([answer for _, answer in refused])
    assert {url for url, _ in refused} == {a.url, b.url}  # both processes hit the one limit


async def test_without_redis_each_process_enforces_the_model_rpm_on_its_own(tmp_path: Path) -> None:
    """The documented contrast: no shared store, so each of two processes admits the whole limit."""
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        toml = rpm_catalog(upstream_url, uuid.uuid4().hex[:10], model_rpm=RPM)
        env = {"REDIS_URL": ""}
        with process(tmp_path, "a", toml, env) as a, process(tmp_path, "b", toml, env) as b:
            results = await race([(a.url, a.create_key("shared")), (b.url, b.create_key("shared"))], PER_PROCESS)

    served = [url for url, answer in results if answer.status_code == 200]
    assert served.count(a.url) == RPM and served.count(b.url) == RPM  # each its own full share
    assert RPM < len(served) <= 2 * RPM
    assert len(fake.requests) == len(served)
    assert_rate_limited([answer for _, answer in results if answer.status_code != 200])


@pytest.fixture
def database() -> Iterator[PostgresDatabase]:
    with PostgresDatabase() as db:
        yield db


@pytest.mark.redis
@pytest.mark.postgres
async def test_two_processes_sharing_redis_serve_exactly_a_plan_rpm_together(
    tmp_path: Path, redis_url: str, database: PostgresDatabase
) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        toml = rpm_catalog(upstream_url, uuid.uuid4().hex[:10], plan_rpm=RPM)
        env = {"REDIS_URL": redis_url}
        with (
            process(tmp_path, "a", toml, env, database.dsn) as a,
            process(tmp_path, "b", toml, env, database.dsn) as b,
        ):
            key = a.create_key("shared")  # one key, one database: the per-key window lives in Redis
            results = await race([(a.url, key), (b.url, key)], PER_PROCESS)

    served = [url for url, answer in results if answer.status_code == 200]
    assert len(served) == RPM, f"{len(served)} served for a per-key rpm of {RPM}"
    assert len(fake.requests) == RPM
    refused = [answer for _, answer in results if answer.status_code != 200]
    assert_rate_limited(refused)
    assert all(f"{RPM} requests per minute" in r.json()["error"]["message"] for r in refused)
    assert {url for url, answer in results if answer.status_code != 200} == {a.url, b.url}
