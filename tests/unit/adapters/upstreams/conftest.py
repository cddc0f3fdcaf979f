"""Fixtures for the upstream adapter tests: fakes, in-process clients and calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from apipod.application.ports import UpstreamCall
from apipod.domain.catalog import Account, Timeouts, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import ChatRequest, Message, Role, TextPart
from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_openai import FakeOpenAI

KEY = "sk-test-key"


def make_call(
    kind: UpstreamKind,
    base_url: str,
    *,
    secret: str = KEY,
    model: str = "gpt-4o-mini",
    timeouts: Timeouts = Timeouts(connect=2.0, read=5.0),
    headers: Mapping[str, str] | None = None,
    options: Mapping[str, Any] | None = None,
    name: str = "up",
) -> UpstreamCall:
    upstream = Upstream(
        name=name,
        kind=kind,
        base_url=base_url,
        accounts=(Account(0, secret),),
        headers=dict(headers or {}),
        timeouts=timeouts,
        options=dict(options or {}),
    )
    return UpstreamCall(upstream, upstream.accounts[0], UpstreamModel(name="m", upstream=name, upstream_model=model))


def user_request(text: str = "hello there", **fields: Any) -> ChatRequest:
    return ChatRequest(model="demo", messages=(Message(Role.USER, (TextPart(text),)),), **fields)


@pytest.fixture
def fake_openai() -> FakeOpenAI:
    return FakeOpenAI(keys=[KEY])


@pytest.fixture
def fake_anthropic() -> FakeAnthropic:
    return FakeAnthropic(keys=[KEY])


@pytest.fixture
async def openai_http(fake_openai: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake_openai)) as client:
        yield client


@pytest.fixture
async def anthropic_http(fake_anthropic: FakeAnthropic) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake_anthropic)) as client:
        yield client
