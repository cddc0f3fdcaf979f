"""A scripted upstream client and a gateway over memory adapters, for use-case tests."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from dishka import AsyncContainer, Provider

from apipod.adapters.memory.keys import InMemoryKeyRepository
from apipod.adapters.memory.limits import InMemoryLimitStore
from apipod.adapters.memory.quota import InMemoryQuotaLedger
from apipod.adapters.memory.system import FixedClock, SeededRandomness, SequentialIdGenerator
from apipod.adapters.memory.usage import InMemoryUsageLog
from apipod.application.gateway import Gateway
from apipod.application.ports import (
    Clock,
    IdGenerator,
    KeyRepository,
    LimitStore,
    QuotaLedger,
    Randomness,
    UpstreamCall,
    UpstreamClient,
    UpstreamRegistry,
    UsageLog,
)
from apipod.application.settings import GovernanceSettings
from apipod.bootstrap.container import build_container, replacing
from apipod.bootstrap.settings import Settings
from apipod.domain.catalog import Catalog, Upstream
from apipod.domain.chat import ChatRequest, ChatResult, FinishReason, Message, Role, TextPart, Usage
from apipod.domain.stream import Finished, MessageStarted, StreamEvent, TextDelta, UsageReported

Reply = ChatResult | Exception | list[StreamEvent | Exception]


def text_result(text: str = "hello", usage: Usage | None = None) -> ChatResult:
    return ChatResult(
        id="r1", model="up-model", parts=(TextPart(text),), usage=usage or Usage(input_tokens=10, output_tokens=5)
    )


def text_events(words: list[str], usage: Usage | None = None) -> list[StreamEvent | Exception]:
    events: list[StreamEvent | Exception] = [MessageStarted(id="m1", model="up-model")]
    events += [TextDelta(w) for w in words]
    events.append(UsageReported(usage or Usage(input_tokens=10, output_tokens=len(words))))
    events.append(Finished(FinishReason.END_TURN))
    return events


@attrs.define
class Seen:
    call: UpstreamCall
    request: ChatRequest


class ScriptedUpstream(UpstreamClient):
    """Answers from a per-model queue of scripted replies; records every call it receives."""

    def __init__(self) -> None:
        self.scripts: dict[str, deque[Reply]] = {}
        self.calls: list[Seen] = []
        self.closed_streams = 0
        self.default: Callable[[UpstreamCall], Reply] = lambda call: text_result()

    def script(self, model: str, *replies: Reply) -> None:
        self.scripts.setdefault(model, deque()).extend(replies)

    def _next(self, call: UpstreamCall, request: ChatRequest) -> Reply:
        self.calls.append(Seen(call, request))
        queue = self.scripts.get(call.model.name)
        return queue.popleft() if queue else self.default(call)

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        reply = self._next(call, request)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, list):
            raise AssertionError("a stream was scripted for a non-streamed call")
        return reply

    async def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        reply = self._next(call, request)
        if isinstance(reply, Exception):
            raise reply
        assert isinstance(reply, list), "a result was scripted for a streamed call"
        try:
            for item in reply:
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed_streams += 1


class OneClientRegistry(UpstreamRegistry):
    def __init__(self, client: UpstreamClient) -> None:
        self._client = client

    def client_for(self, upstream: Upstream) -> UpstreamClient:
        return self._client


@attrs.define
class World:
    gateway: Gateway
    upstream: ScriptedUpstream
    clock: FixedClock
    usage: InMemoryUsageLog
    ledger: InMemoryQuotaLedger
    limits: InMemoryLimitStore
    keys: InMemoryKeyRepository
    container: AsyncContainer


async def make_world(
    catalog: Catalog,
    *providers: Provider,
    registry: UpstreamRegistry | None = None,
    replace: dict[Any, object] | None = None,
    **settings: Any,
) -> World:
    """The production object graph (``build_container``) over in-memory stores, with a fixed clock, seeded
    randomness, sequential ids and a scripted upstream in place of the real ones; ``replace`` puts more
    ports in place (``{Telemetry: fake}``)."""
    clock = FixedClock(datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    upstream = ScriptedUpstream()
    usage = InMemoryUsageLog()
    ledger = InMemoryQuotaLedger()
    limits = InMemoryLimitStore(clock)
    keys = InMemoryKeyRepository()
    replaced, context = replacing(
        {
            Clock: clock,
            Randomness: SeededRandomness(7),
            IdGenerator: SequentialIdGenerator(),
            KeyRepository: keys,
            QuotaLedger: ledger,
            UsageLog: usage,
            LimitStore: limits,
            UpstreamRegistry: registry or OneClientRegistry(upstream),
            **(replace or {}),
        }
    )
    settings_ = Settings(database_url="memory://", governance=GovernanceSettings(**settings))
    container = build_container(settings_, replaced, *providers, context=context)
    gateway = await container.get(Gateway)
    await gateway.apply_catalog(catalog)
    return World(gateway, upstream, clock, usage, ledger, limits, keys, container)


def user_request(
    text: str = "hi", *, model: str = "anything", stream: bool = False, max_tokens: int = 100
) -> ChatRequest:
    return ChatRequest(
        model=model, messages=(Message(Role.USER, (TextPart(text),)),), stream=stream, max_output_tokens=max_tokens
    )
