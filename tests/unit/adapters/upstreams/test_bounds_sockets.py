"""The bounds over real sockets with both transports, through a pool of ONE connection: after each bound
fires, the next call must still get through, so the interrupted read gave its connection back (or closed it)
instead of leaking it. The fake sees the gateway hang up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import attrs
import httpx
import pytest

from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams._http import make_http_client
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.application.ports import UpstreamCall
from apipod.domain.catalog import Timeouts, UpstreamKind
from apipod.domain.errors import UpstreamResponseTooLargeError, UpstreamTimeoutError
from apipod.domain.stream import StreamFailed, TextDelta
from tests.fakes.fake_openai import openai_frames
from tests.fakes.hostile import Flood, HostileOpenAI
from tests.fakes.server import serve
from tests.unit.adapters.upstreams.conftest import KEY, make_call, user_request

BOUNDS = Timeouts(connect=1.0, read=2.0, first_event=0.3, total=1.0)


@pytest.fixture(params=["aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    http = make_http_client(transport=request.param, max_connections=1)
    yield http
    await http.aclose()


@pytest.fixture
def fake() -> Iterator[tuple[HostileOpenAI, str]]:
    hostile = HostileOpenAI(keys=[KEY])
    with serve(hostile) as url:
        yield hostile, url + "/v1"


async def still_serves(upstream: OpenAIUpstream, call: UpstreamCall) -> None:
    result = await upstream.complete(call, user_request("next"))
    assert result.text() == "Echo: next"


async def test_comment_stream_then_the_pool_still_serves(
    client: httpx.AsyncClient, fake: tuple[HostileOpenAI, str]
) -> None:
    hostile, base = fake
    upstream = OpenAIUpstream(client, retry=NO_RETRY)
    call = make_call(UpstreamKind.OPENAI, base, timeouts=BOUNDS)
    hostile.push(Flood(piece=b": ping\n\n", every=0.05, size=10_000))
    with pytest.raises(UpstreamTimeoutError):
        [e async for e in upstream.stream(call, user_request())]
    assert await hostile.wait_disconnect()
    await still_serves(upstream, call)


async def test_total_mid_stream_then_the_pool_still_serves(
    client: httpx.AsyncClient, fake: tuple[HostileOpenAI, str]
) -> None:
    hostile, base = fake
    upstream = OpenAIUpstream(client, retry=NO_RETRY)
    call = make_call(UpstreamKind.OPENAI, base, timeouts=BOUNDS)
    chunk = {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]}
    piece = openai_frames([chunk], done=False)[0]
    hostile.push(Flood(frames=[piece], piece=piece, every=0.05, size=len(piece) * 200))
    events = [e async for e in upstream.stream(call, user_request())]
    assert any(isinstance(e, TextDelta) for e in events)
    assert isinstance(events[-1], StreamFailed) and "longer than 1 seconds" in events[-1].message
    assert await hostile.wait_disconnect()
    await still_serves(upstream, call)


async def test_huge_answer_then_the_pool_still_serves(
    client: httpx.AsyncClient, fake: tuple[HostileOpenAI, str]
) -> None:
    hostile, base = fake
    upstream = OpenAIUpstream(client, retry=NO_RETRY)
    call = make_call(UpstreamKind.OPENAI, base, timeouts=BOUNDS)
    call = attrs.evolve(call, upstream=attrs.evolve(call.upstream, max_response_bytes=100_000))
    hostile.push(Flood(frames=[b'{"a": "'], piece=b"x" * 16384, size=50_000_000, content_type="application/json"))
    with pytest.raises(UpstreamResponseTooLargeError):
        await upstream.complete(call, user_request())
    assert await hostile.wait_disconnect()
    assert hostile.flood_bytes < 20_000_000
    await still_serves(upstream, call)
