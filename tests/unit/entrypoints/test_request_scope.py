"""The dishka REQUEST scope around each HTTP request: open until the response (a stream included) is sent,
closed with everything the request registered, on every ending: finished, client gone mid-stream, client
gone before the upstream's first event. Driven as raw ASGI, so the disconnect is exactly where we put it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from apipod.application.ports import UpstreamCall
from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.stream import StreamEvent
from apipod.entrypoints.http.app import create_app
from apipod.entrypoints.http.request_scope import HttpRequestProvider, credential_of, request_id_of
from tests.unit.application.fakes import (
    OneClientRegistry,
    ScriptedUpstream,
    World,
    make_world,
    text_events,
    text_result,
)

SECRET = "s" * 24
CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="gpt-x"),),
    plans=(Plan(name="basic", routes=(Route("m"),)),),
)


class GatedUpstream(ScriptedUpstream):
    """Streams only once ``first`` is set, and remembers whether its stream was cancelled or closed."""

    def __init__(self) -> None:
        super().__init__()
        self.first = asyncio.Event()
        self.waiting = asyncio.Event()
        self.cancelled = False

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        self.waiting.set()
        try:
            await self.first.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return await super().complete(call, request)

    async def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.waiting.set()
        try:
            await self.first.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        async for event in super().stream(call, request):
            yield event


class Exchange:
    """One raw ASGI request: the body, then whatever ``disconnect()`` decides."""

    def __init__(self, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8081),
        }
        self._body = orjson.dumps(body)
        self._gone = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.first_body = asyncio.Event()

    def disconnect(self) -> None:
        self._gone.set()

    async def receive(self) -> dict[str, Any]:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(dict(message))
        if message["type"] == "http.response.body" and message.get("body"):
            self.first_body.set()

    def header(self, name: bytes) -> bytes | None:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return next((v for k, v in start["headers"] if k == name), None)


@pytest.fixture
async def gated() -> GatedUpstream:
    return GatedUpstream()


@pytest.fixture
async def world(gated: GatedUpstream) -> World:
    return await make_world(CATALOG, HttpRequestProvider(), registry=OneClientRegistry(gated))


async def exchange_for(world: World, *, stream: bool, request_id: bytes | None = None) -> Exchange:
    key = (await world.gateway.issue_key(name="alice", plan="basic")).plaintext
    headers = [(b"authorization", b"Bearer " + key.encode())]
    if request_id is not None:
        headers.append((b"x-request-id", request_id))
    body = {"model": "basic", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return Exchange(body, headers)


def app_of(world: World) -> Any:
    return create_app(lambda: world.container, admin_secret=SECRET, max_body_bytes=10_000)


async def test_a_finished_stream_closes_the_scope_after_its_last_byte(world: World, gated: GatedUpstream) -> None:
    gated.first.set()
    gated.script("m", text_events(["a", "b"]))
    exchange = await exchange_for(world, stream=True)

    await app_of(world)(exchange.scope, exchange.receive, exchange.send)

    assert exchange.sent[-1].get("more_body", False) is False
    assert gated.closed_streams == 1
    (row,) = world.usage.records()
    assert row.status == "success"
    assert exchange.header(b"x-request-id") == row.request_id.encode()


async def test_a_client_gone_mid_stream_cancels_and_closes_everything(world: World, gated: GatedUpstream) -> None:
    gated.first.set()
    never = asyncio.Event()
    gated.script("m", text_events(["first"])[:2])  # started and one delta; then the stream stays open
    original = gated.stream

    async def held(call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        async for event in original(call, request):
            yield event
        await never.wait()

    gated.stream = held  # type: ignore[method-assign]
    exchange = await exchange_for(world, stream=True)
    task = asyncio.create_task(app_of(world)(exchange.scope, exchange.receive, exchange.send))
    await asyncio.wait_for(exchange.first_body.wait(), 2)

    exchange.disconnect()
    await asyncio.wait_for(task, 2)

    assert gated.closed_streams == 1
    (row,) = world.usage.records()
    assert row.status == "cancelled"
    assert row.usage.output_tokens > 0  # what was relayed is counted


async def test_a_client_gone_before_the_first_event_cancels_the_upstream_call(
    world: World, gated: GatedUpstream
) -> None:
    gated.script("m", text_events(["never sent"]))
    exchange = await exchange_for(world, stream=True)
    task = asyncio.create_task(app_of(world)(exchange.scope, exchange.receive, exchange.send))
    await asyncio.wait_for(gated.waiting.wait(), 2)

    exchange.disconnect()
    await asyncio.wait_for(task, 2)

    assert gated.cancelled
    (row,) = world.usage.records()
    assert row.status == "cancelled"
    assert not [m for m in exchange.sent if m["type"] == "http.response.start"]


async def test_a_client_gone_before_a_non_streamed_answer_cancels_the_upstream_call(
    world: World, gated: GatedUpstream
) -> None:
    exchange = await exchange_for(world, stream=False)
    task = asyncio.create_task(app_of(world)(exchange.scope, exchange.receive, exchange.send))
    await asyncio.wait_for(gated.waiting.wait(), 2)

    exchange.disconnect()
    await asyncio.wait_for(task, 2)

    assert gated.cancelled
    (row,) = world.usage.records()
    assert row.status == "cancelled"


async def test_a_well_formed_client_request_id_is_kept_and_joins_the_usage_row(
    world: World, gated: GatedUpstream
) -> None:
    gated.first.set()
    gated.script("m", text_events(["a"]))
    exchange = await exchange_for(world, stream=False, request_id=b"trace-42:a.b")

    await app_of(world)(exchange.scope, exchange.receive, exchange.send)

    assert exchange.header(b"x-request-id") == b"trace-42:a.b"
    assert world.usage.records()[0].request_id == "trace-42:a.b"


@pytest.mark.parametrize("given", [b"", b"has space", b"x" * 129, "é".encode(), b"semi;colon"])
def test_a_malformed_client_request_id_is_replaced(given: bytes) -> None:
    scope = {"headers": [(b"x-request-id", given)]}
    assert request_id_of(scope, lambda: "req_new") == "req_new"


def test_credentials_come_from_bearer_or_x_api_key() -> None:
    from apipod.domain.errors import AuthenticationError

    assert credential_of({"headers": [(b"authorization", b"Bearer apk_1")]}) == "apk_1"
    assert credential_of({"headers": [(b"x-api-key", b"apk_2")]}) == "apk_2"
    assert credential_of({"headers": []}) is None
    with pytest.raises(AuthenticationError):
        credential_of({"headers": [(b"authorization", b"Basic abc")]})


async def test_a_non_streamed_answer_is_sent_before_its_usage_row_which_is_written_once(
    world: World, gated: GatedUpstream
) -> None:
    """The row (and the telemetry) run as the request closes, after the answer's last byte; the quota was
    settled before the answer (``Gateway.complete(after_answer=...)``)."""
    gated.first.set()
    gated.script("m", text_result("hi"))
    exchange = await exchange_for(world, stream=False)
    rows_when_answered: list[int] = []
    send = exchange.send

    async def noting(message: dict[str, Any]) -> None:
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            rows_when_answered.append(len(world.usage.records()))
            exchange.disconnect()  # the client leaves at once: the row is still written

    exchange.send = noting  # type: ignore[method-assign]
    await app_of(world)(exchange.scope, exchange.receive, exchange.send)

    assert rows_when_answered == [0]
    (row,) = world.usage.records()
    assert row.status == "success"
    assert exchange.header(b"x-request-id") == row.request_id.encode()
