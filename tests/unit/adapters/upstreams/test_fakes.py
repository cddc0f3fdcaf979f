"""The fake upstreams themselves: fixture framing, default answers, auth, scripted hangs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.scripted import Reply, sse_frames_from_fixture
from tests.fixture_path import fixture

SSE_FIXTURES = sorted(
    p.relative_to(fixture("openai").parent).as_posix() for p in fixture("openai").parent.glob("*/*.sse")
)


@pytest.mark.parametrize("name", SSE_FIXTURES)
def test_fixture_frames_are_byte_exact(name: str) -> None:
    raw = fixture(name).read_bytes()
    frames = sse_frames_from_fixture(fixture(name))
    assert b"".join(frames) == raw
    assert frames  # a one-event answer (a single function call) is one frame
    assert all(f.endswith((b"\n\n", b"\r\n\r\n")) for f in frames[:-1])


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(FakeOpenAI(keys=["k"]))) as client:
        yield client


async def test_openai_fake_rejects_missing_and_wrong_keys(http: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    missing = await http.post("http://f/v1/chat/completions", json=body)
    wrong = await http.post("http://f/v1/chat/completions", json=body, headers={"authorization": "Bearer nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert wrong.json()["error"]["code"] == "invalid_api_key"


async def test_openai_fake_streams_usage_only_when_asked(http: httpx.AsyncClient) -> None:
    body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}
    plain = await http.post("http://f/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})
    body["stream_options"] = {"include_usage": True}
    usage = await http.post("http://f/v1/chat/completions", json=body, headers={"authorization": "Bearer k"})
    assert plain.headers["content-type"] == "text/event-stream"
    assert plain.text.endswith("data: [DONE]\n\n")
    assert '"usage"' not in plain.text
    assert '"usage":{"prompt_tokens"' in usage.text
    assert '"content":"x"' in usage.text


async def test_anthropic_fake_default_stream_follows_the_event_sequence() -> None:
    fake = FakeAnthropic()
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as client:
        response = await client.post(
            "http://f/v1/messages",
            headers={"x-api-key": "any", "anthropic-version": "2023-06-01"},
            json={"model": "c", "max_tokens": 5, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
        )
    names = [line[7:] for line in response.text.split("\n") if line.startswith("event: ")]
    assert names == [
        "message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip


async def test_hang_then_reply() -> None:
    fake = FakeOpenAI()
    fake.hang(0.1, then=Reply(body={"ok": True}))
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as client:
        started = time.perf_counter()
        response = await client.get("http://f/v1/models", headers={"authorization": "Bearer k"})
    assert time.perf_counter() - started >= 0.1
    assert response.json() == {"ok": True}
    assert fake.outcomes[-1].completed
