"""Issue 5 end to end: failover before the first byte, rests that honour Retry-After, the client's error when
nothing can serve, and the gateway's own limits, through a real ``apipod serve`` process and fake upstreams on
real sockets, driven by the official SDKs.

Every scenario has its own plan, upstreams and models (cooldowns and limits are per upstream, account and
model), so one gateway process serves the whole module. A plan routes to ``<scenario>-main`` with weight 1 and
to ``<scenario>-spare`` with weight 0: a weight-0 route is picked only when nothing else is left, which makes
the first pick deterministic. Which upstream served, and what was tried, comes from the usage rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import attrs
import httpx
import openai
import pytest

from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.scripted import Reply, ScriptedUpstream
from tests.fakes.server import refused_url, serve
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

QUEUE_WAIT = 1.0
SHORT_READ = "timeout = { connect = 2, read = 0.5 }\n"


@attrs.define
class Fakes:
    backup: FakeOpenAI = attrs.field(factory=FakeOpenAI)  # answers everything; every spare route points here
    limited: FakeOpenAI = attrs.field(factory=FakeOpenAI)
    failing: FakeOpenAI = attrs.field(factory=FakeOpenAI)
    overloaded: FakeAnthropic = attrs.field(factory=FakeAnthropic)
    slow: FakeOpenAI = attrs.field(factory=FakeOpenAI)
    all_limited_openai: FakeOpenAI = attrs.field(factory=FakeOpenAI)
    all_limited_anthropic: FakeAnthropic = attrs.field(factory=FakeAnthropic)
    down_openai: FakeOpenAI = attrs.field(factory=FakeOpenAI)
    down_anthropic: FakeAnthropic = attrs.field(factory=FakeAnthropic)
    bounded: FakeOpenAI = attrs.field(factory=FakeOpenAI)
    queued: FakeOpenAI = attrs.field(factory=FakeOpenAI)


@attrs.define
class Setup:
    gateway: ApipodProcess
    fakes: Fakes


def _openai(name: str, url: str, extra: str = "") -> str:
    return provider(name, "openai", url + "/v1", extra=extra)


def _anthropic(name: str, url: str) -> str:
    return provider(name, "anthropic", url)


def gateway_catalog(urls: dict[str, str]) -> str:
    refused = refused_url()
    providers = [
        _openai("spare", urls["backup"]),
        _openai("limited", urls["limited"]),
        _openai("failing", urls["failing"]),
        _anthropic("overloaded", urls["overloaded"]),
        _openai("refused", refused),
        _openai("slow", urls["slow"], SHORT_READ),
        _openai("slow-stream", urls["slow"], SHORT_READ),
        _openai("lim-o1", urls["all_limited_openai"]),
        _openai("lim-o2", urls["all_limited_openai"]),
        _anthropic("lim-a1", urls["all_limited_anthropic"]),
        _anthropic("lim-a2", urls["all_limited_anthropic"]),
        _openai("down-o1", refused),
        _openai("down-o2", urls["down_openai"]),
        _anthropic("down-a1", refused),
        _anthropic("down-a2", urls["down_anthropic"]),
        *[_openai(f"bounded-{n}", urls["bounded"]) for n in range(4)],
        _openai("queued", urls["queued"]),
    ]
    models = [
        model("limited-main", "limited", "gpt-4o-mini"),
        model("failing-main", "failing", "gpt-4o-mini"),
        model("overloaded-main", "overloaded", "claude-sonnet-4-5"),
        model("refused-main", "refused", "gpt-4o-mini"),
        model("slow-main", "slow", "gpt-4o-mini"),
        model("slow-stream-main", "slow-stream", "gpt-4o-mini"),
        model("lim-o1", "lim-o1", "gpt-4o-mini"),
        model("lim-o2", "lim-o2", "gpt-4o"),
        model("lim-a1", "lim-a1", "claude-sonnet-4-5"),
        model("lim-a2", "lim-a2", "claude-haiku-4-5"),
        model("down-o1", "down-o1", "gpt-4o-mini"),
        model("down-o2", "down-o2", "gpt-4o-mini"),
        model("down-a1", "down-a1", "claude-sonnet-4-5"),
        model("down-a2", "down-a2", "claude-sonnet-4-5"),
        *[model(f"bounded-{n}", f"bounded-{n}", "gpt-4o-mini") for n in range(4)],
        model("rpm-main", "spare", "gpt-4o-mini", rpm=2),
        model("queued-main", "queued", "gpt-4o-mini"),
    ]
    scenarios = ["limited", "failing", "overloaded", "refused", "slow", "slow-stream", "rpm"]
    models += [model(f"{s}-spare", "spare", "gpt-4o-mini") for s in scenarios]
    plans = [plan(s, {f"{s}-main": 1, f"{s}-spare": 0}) for s in scenarios]
    plans += [
        plan("all-limited-openai", {"lim-o1": 1, "lim-o2": 1}),
        plan("all-limited-anthropic", {"lim-a1": 1, "lim-a2": 1}),
        plan("down-openai", {"down-o1": 1, "down-o2": 1}),
        plan("down-anthropic", {"down-a1": 1, "down-a2": 1}),
        plan("bounded", {f"bounded-{n}": 1 for n in range(4)}),
        plan("key-rpm", {"rpm-spare": 1}, extra="rpm = 3\n"),
        plan("key-concurrency", {"queued-main": 1}, extra="max_concurrency = 1\n"),
    ]
    return catalog(*providers, models=models, plans=plans)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    fakes = Fakes()
    with contextlib.ExitStack() as stack:
        urls = {field.name: stack.enter_context(serve(getattr(fakes, field.name))) for field in attrs.fields(Fakes)}
        gateway = ApipodProcess(
            catalog=gateway_catalog(urls),
            tmp=tmp_path_factory.mktemp("failover"),
            env={"QUEUE_WAIT_SECONDS": str(QUEUE_WAIT), "MAX_ATTEMPTS": "3"},
        )
        with gateway:
            yield Setup(gateway, fakes)


# -- helpers -----------------------------------------------------------------------------------------------


def new_key(gateway: ApipodProcess, tier: str) -> tuple[str, str]:
    """(key id, secret) of a fresh key on ``tier``."""
    answer = httpx.post(
        f"{gateway.url}/admin/create-key",
        headers=gateway.admin,
        json={"name": f"holder-{uuid.uuid4().hex[:8]}", "tier": tier},
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"]), str(answer.json()["api_key"])


def openai_client(gateway: ApipodProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=20)


def anthropic_client(gateway: ApipodProcess, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=key, max_retries=0, timeout=20)


def ask(client: openai.OpenAI, text: str = "hello there") -> str:
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])
    return answer.choices[0].message.content or ""


def ask_anthropic(client: anthropic.Anthropic, text: str = "hello there") -> str:
    answer = client.messages.create(model="claude-test", max_tokens=64, messages=[{"role": "user", "content": text}])
    block = answer.content[0]
    assert block.type == "text"
    return block.text


def rows_of(gateway: ApipodProcess, key_id: str, count: int) -> list[dict[str, Any]]:
    """The key's usage rows, oldest first."""
    rows = gateway.wait_usage(count, key_id=key_id)
    assert len(rows) == count, rows
    return list(reversed(rows))


def tried(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(model, outcome) of each attempt that reached an upstream, in order."""
    return [(a["model"], a["outcome"]) for a in row["attempts"] if not a["outcome"].startswith("skipped")]


def skipped(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["model"], a["outcome"]) for a in row["attempts"] if a["outcome"].startswith("skipped")]


def completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-held",
        "object": "chat.completion",
        "created": 1727346142,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


async def arrived(fake: ScriptedUpstream, count: int, timeout: float = 3.0) -> None:
    assert await fake.wait_for(lambda: len(fake.requests) >= count, timeout), len(fake.requests)


# -- failover while a candidate can serve ----------------------------------------------------------------


def test_a_429_with_retry_after_fails_over_and_rests_the_pair_for_exactly_that_long(setup: Setup) -> None:
    gateway, limited = setup.gateway, setup.fakes.limited
    key_id, key = new_key(gateway, "limited")
    client = openai_client(gateway, key)
    limited.reply_error(
        429,
        "Rate limit reached for requests",
        kind="requests",
        code="rate_limit_exceeded",
        headers={"retry-after": "2"},
    )

    start = time.monotonic()
    assert ask(client, "first").startswith("Echo: first")  # served by the spare
    assert ask(client, "second").startswith("Echo: second")  # the pair rests: straight to the spare
    time.sleep(max(0.0, start + 1.4 - time.monotonic()))
    assert ask(client, "third").startswith("Echo: third")  # still resting 1.4 s in
    time.sleep(max(0.0, start + 2.3 - time.monotonic()))
    assert ask(client, "fourth").startswith("Echo: fourth")  # rested 2 s: back on the main route

    assert len(limited.requests) == 2  # the 429, then the fourth request
    first, second, third, fourth = rows_of(gateway, key_id, 4)
    assert tried(first) == [("limited-main", "failed: UpstreamRateLimitedError"), ("limited-spare", "served")]
    assert (first["status"], first["routed_model"], first["upstream_provider"]) == (
        "success",
        "limited-spare",
        "spare/#0",
    )
    for row in (second, third):
        assert row["routed_model"] == "limited-spare"
        assert tried(row) == [("limited-spare", "served")]
        assert skipped(row) == [("limited-main", "skipped: cooling down")]
    assert (fourth["routed_model"], fourth["upstream_provider"]) == ("limited-main", "limited/#0")
    assert fourth["attempts"] == [{"model": "limited-main", "account": "limited/#0", "outcome": "served"}]


def test_a_500_fails_over_to_the_next_candidate(setup: Setup) -> None:
    gateway, failing = setup.gateway, setup.fakes.failing
    key_id, key = new_key(gateway, "failing")
    failing.reply_error(500, "The server had an error while processing your request.", kind="server_error")

    assert ask(openai_client(gateway, key), "after a 500").startswith("Echo: after a 500")

    assert len(failing.requests) == 1
    [row] = rows_of(gateway, key_id, 1)
    assert (row["status"], row["routed_model"], row["upstream_provider"]) == ("success", "failing-spare", "spare/#0")
    assert tried(row) == [("failing-main", "failed: UpstreamUnavailableError"), ("failing-spare", "served")]
    assert row["attempts"][0]["account"] == "failing/#0"


def test_an_anthropic_529_fails_over_for_an_anthropic_client(setup: Setup) -> None:
    gateway, overloaded = setup.gateway, setup.fakes.overloaded
    key_id, key = new_key(gateway, "overloaded")
    overloaded.reply_error(529, "Overloaded")

    assert ask_anthropic(anthropic_client(gateway, key), "after a 529").startswith("Echo: after a 529")

    assert len(overloaded.requests) == 1
    assert overloaded.last.headers["anthropic-version"]
    [row] = rows_of(gateway, key_id, 1)
    assert (row["routed_model"], row["upstream_provider"]) == ("overloaded-spare", "spare/#0")
    assert tried(row) == [("overloaded-main", "failed: UpstreamOverloadedError"), ("overloaded-spare", "served")]


def test_a_refused_connection_fails_over(setup: Setup) -> None:
    gateway = setup.gateway
    key_id, key = new_key(gateway, "refused")

    assert ask(openai_client(gateway, key), "nobody home").startswith("Echo: nobody home")

    [row] = rows_of(gateway, key_id, 1)
    assert (row["routed_model"], row["upstream_provider"]) == ("refused-spare", "spare/#0")
    assert tried(row) == [("refused-main", "failed: UpstreamUnavailableError"), ("refused-spare", "served")]


def test_a_first_byte_slower_than_the_read_timeout_fails_over(setup: Setup) -> None:
    gateway, slow = setup.gateway, setup.fakes.slow
    key_id, key = new_key(gateway, "slow")
    slow.hang(10, then=Reply(body=completion("too late")))

    start = time.monotonic()
    assert ask(openai_client(gateway, key), "in a hurry").startswith("Echo: in a hurry")
    elapsed = time.monotonic() - start

    assert 0.5 <= elapsed < 2.5, elapsed  # the 0.5 s read timeout, not the 10 s hang
    [row] = rows_of(gateway, key_id, 1)
    assert (row["routed_model"], row["upstream_provider"]) == ("slow-spare", "spare/#0")
    assert tried(row) == [("slow-main", "failed: UpstreamUnavailableError"), ("slow-spare", "served")]
    assert asyncio.run(slow.wait_for(lambda: slow.outcomes[0].disconnected))  # apipod hung up on it


def test_a_stream_whose_first_byte_is_too_slow_fails_over(setup: Setup) -> None:
    gateway, slow = setup.gateway, setup.fakes.slow
    key_id, key = new_key(gateway, "slow-stream")
    before = len(slow.requests)
    slow.hang(10)

    start = time.monotonic()
    stream = openai_client(gateway, key).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "stream it"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    elapsed = time.monotonic() - start

    assert text == "Echo: stream it"
    assert 0.5 <= elapsed < 2.5, elapsed
    assert len(slow.requests) == before + 1
    [row] = rows_of(gateway, key_id, 1)
    assert row["status"] == "success"
    assert tried(row) == [("slow-stream-main", "failed: UpstreamUnavailableError"), ("slow-stream-spare", "served")]


def test_failover_is_bounded_by_max_attempts(setup: Setup) -> None:
    gateway, bounded = setup.gateway, setup.fakes.bounded
    key_id, key = new_key(gateway, "bounded")
    for _ in range(4):
        bounded.reply_error(500, "boom", kind="server_error")

    with pytest.raises(openai.InternalServerError) as caught:
        ask(openai_client(gateway, key))

    assert caught.value.status_code == 503
    assert len(bounded.requests) == 3  # MAX_ATTEMPTS, though a fourth candidate was left
    [row] = rows_of(gateway, key_id, 1)
    assert len(tried(row)) == 3
    assert row["status"] == "upstream_unavailable"
    bounded.replies.clear()


# -- nothing can serve: the client's own dialect ---------------------------------------------------------


def test_every_candidate_rate_limited_answers_429_with_retry_after_to_an_openai_client(setup: Setup) -> None:
    gateway, fake = setup.gateway, setup.fakes.all_limited_openai
    key_id, key = new_key(gateway, "all-limited-openai")
    for _ in range(2):
        fake.reply_error(
            429, "Rate limit reached", kind="requests", code="rate_limit_exceeded", headers={"retry-after": "7"}
        )
    client = openai_client(gateway, key)

    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    answer = caught.value.response
    assert answer.status_code == 429
    assert 6 <= int(answer.headers["retry-after"]) <= 7
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert len(fake.requests) == 2

    # Both are resting now: the next request is refused at once, with the time left, without an upstream call.
    with pytest.raises(openai.RateLimitError) as again:
        ask(client)
    assert 1 <= int(again.value.response.headers["retry-after"]) <= 7
    assert len(fake.requests) == 2

    first, second = rows_of(gateway, key_id, 2)
    assert first["status"] == second["status"] == "rate_limited"
    assert sorted(tried(first)) == [
        ("lim-o1", "failed: UpstreamRateLimitedError"),
        ("lim-o2", "failed: UpstreamRateLimitedError"),
    ]
    assert sorted(skipped(second)) == [("lim-o1", "skipped: cooling down"), ("lim-o2", "skipped: cooling down")]


def test_every_candidate_rate_limited_answers_429_with_retry_after_to_an_anthropic_client(setup: Setup) -> None:
    gateway, fake = setup.gateway, setup.fakes.all_limited_anthropic
    key_id, key = new_key(gateway, "all-limited-anthropic")
    for _ in range(2):
        fake.reply_error(
            429, "Number of request tokens has exceeded your per-minute rate limit", headers={"retry-after": "7"}
        )

    with pytest.raises(anthropic.RateLimitError) as caught:
        ask_anthropic(anthropic_client(gateway, key))

    answer = caught.value.response
    assert answer.status_code == 429
    assert 6 <= int(answer.headers["retry-after"]) <= 7
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error", body
    assert len(fake.requests) == 2
    [row] = rows_of(gateway, key_id, 1)
    assert row["status"] == "rate_limited"


def test_every_candidate_failing_answers_503_to_an_openai_client(setup: Setup) -> None:
    gateway, fake = setup.gateway, setup.fakes.down_openai
    key_id, key = new_key(gateway, "down-openai")
    fake.reply_error(500, "The server had an error", kind="server_error")

    with pytest.raises(openai.InternalServerError) as caught:
        ask(openai_client(gateway, key))

    answer = caught.value.response
    assert answer.status_code == 503
    assert "retry-after" not in answer.headers
    error = answer.json()["error"]
    assert error["type"] == "server_error", error
    assert len(fake.requests) == 1
    [row] = rows_of(gateway, key_id, 1)
    assert row["status"] == "upstream_unavailable"
    assert sorted(tried(row)) == [
        ("down-o1", "failed: UpstreamUnavailableError"),
        ("down-o2", "failed: UpstreamUnavailableError"),
    ]


def test_every_candidate_failing_answers_503_to_an_anthropic_client(setup: Setup) -> None:
    gateway, fake = setup.gateway, setup.fakes.down_anthropic
    key_id, key = new_key(gateway, "down-anthropic")
    fake.reply_error(529, "Overloaded")

    with pytest.raises(anthropic.InternalServerError) as caught:
        ask_anthropic(anthropic_client(gateway, key))

    answer = caught.value.response
    assert answer.status_code == 503
    body = answer.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error", body
    assert len(fake.requests) == 1
    [row] = rows_of(gateway, key_id, 1)
    assert sorted(tried(row)) == [
        ("down-a1", "failed: UpstreamUnavailableError"),
        ("down-a2", "failed: UpstreamOverloadedError"),
    ]


# -- the gateway's own limits ----------------------------------------------------------------------------


def test_a_model_over_its_rpm_is_set_aside(setup: Setup) -> None:
    gateway = setup.gateway
    key_id, key = new_key(gateway, "rpm")
    client = openai_client(gateway, key)

    for n in range(3):
        assert ask(client, f"number {n}").startswith(f"Echo: number {n}")

    rows = rows_of(gateway, key_id, 3)
    assert [r["routed_model"] for r in rows] == ["rpm-main", "rpm-main", "rpm-spare"]
    assert skipped(rows[2]) == [("rpm-main", "skipped: limited: rpm")]
    assert tried(rows[2]) == [("rpm-spare", "served")]


def test_a_plan_over_its_rpm_answers_429_with_retry_after_in_each_dialect(setup: Setup) -> None:
    gateway, backup = setup.gateway, setup.fakes.backup
    _, key = new_key(gateway, "key-rpm")
    client = openai_client(gateway, key)
    before = len(backup.requests)

    for n in range(3):
        ask(client, f"number {n}")
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    with pytest.raises(anthropic.RateLimitError) as caught_anthropic:
        ask_anthropic(anthropic_client(gateway, key))

    assert len(backup.requests) == before + 3
    answer = caught.value.response
    assert 55 <= int(answer.headers["retry-after"]) <= 60
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "3 requests per minute" in error["message"]
    answer = caught_anthropic.value.response
    assert answer.status_code == 429
    assert 55 <= int(answer.headers["retry-after"]) <= 60
    assert answer.json()["error"]["type"] == "rate_limit_error"


async def test_a_request_over_the_key_concurrency_waits_for_the_queue_time_then_gets_429(setup: Setup) -> None:
    gateway, queued = setup.gateway, setup.fakes.queued
    _, key = new_key(gateway, "key-concurrency")
    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=20)
    messages: Any = [{"role": "user", "content": "hi"}]
    before = len(queued.requests)

    # The only slot is held for 2.5 s; a second request waits QUEUE_WAIT for it, then gets its 429.
    queued.hang(2.5, then=Reply(body=completion("held the slot")))
    holder = asyncio.create_task(client.chat.completions.create(model="x", messages=messages))
    await arrived(queued, before + 1)
    start = time.monotonic()
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="x", messages=messages)
    waited = time.monotonic() - start
    assert QUEUE_WAIT - 0.1 <= waited < QUEUE_WAIT + 0.8, waited
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.response.json()["error"]["type"] == "rate_limit_error"
    assert (await holder).choices[0].message.content == "held the slot"
    assert len(queued.requests) == before + 1

    # Held for less than the queue time: the waiting request gets the slot as soon as it is free.
    queued.hang(0.5, then=Reply(body=completion("short hold")))
    holder = asyncio.create_task(client.chat.completions.create(model="x", messages=messages))
    await arrived(queued, before + 2)
    start = time.monotonic()
    answer = await client.chat.completions.create(model="x", messages=messages)
    waited = time.monotonic() - start
    assert answer.choices[0].message.content == "Echo: hi"
    assert (await holder).choices[0].message.content == "short hold"
    assert waited >= 0.2, waited  # it queued behind the holder (and, served, did not time out)
    assert len(queued.requests) == before + 3
