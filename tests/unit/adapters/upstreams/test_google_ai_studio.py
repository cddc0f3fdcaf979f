"""GoogleAIStudioUpstream against the fake Gemini server: in process over a streaming ASGI transport, and over
a real socket with both production transports."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import httpx
import orjson
import pytest

from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams._http import make_http_client
from apipod.adapters.upstreams.google_ai_studio import GoogleAIStudioUpstream
from apipod.application.ports import UpstreamCall
from apipod.domain.catalog import Account, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import (
    ChatRequest,
    FinishReason,
    Message,
    Part,
    Role,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ToolResultPart,
    ToolSpec,
    ToolUsePart,
    Usage,
)
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamOverloadedError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from apipod.domain.stream import (
    BlockStopped,
    Finished,
    MessageStarted,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_gemini import FakeGemini, error_body, gemini_frames, text_chunk, text_response
from tests.fakes.server import serve
from tests.fixture_path import fixture

KEY = "AIzaSy-test-key"
WEATHER = ToolSpec(name="weather", parameters={"type": "object", "properties": {"location": {"type": "string"}}})
QUESTION = Message(Role.USER, (TextPart("Weather in San Francisco?"),))


def make_call(base_url: str, *, model: str = "gemini-3-pro-preview", secret: str = KEY) -> UpstreamCall:
    account = Account(0, secret)
    upstream = Upstream(name="aistudio", kind=UpstreamKind.GOOGLE_AI_STUDIO, base_url=base_url, accounts=(account,))
    return UpstreamCall(upstream, account, UpstreamModel(name="gm", upstream="aistudio", upstream_model=model))


def counting_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"call_{next(counter)}"


@pytest.fixture
def fake() -> FakeGemini:
    return FakeGemini(keys=[KEY], models=["gemini-2.5-flash", "text-embedding-004", "gemini-2.5-pro"])


@pytest.fixture
async def client(fake: FakeGemini) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        yield http


@pytest.fixture
def gemini(client: httpx.AsyncClient) -> GoogleAIStudioUpstream:
    return GoogleAIStudioUpstream(client, retry=NO_RETRY, ids=counting_ids())


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def assistant_turn(events: list[StreamEvent]) -> Message:
    """The assistant message a client would send back after this stream (tool calls with their signatures)."""
    parts: list[Part] = []
    for event in events:
        if isinstance(event, TextDelta):
            parts.append(TextPart(event.text))
        elif isinstance(event, ToolCallStarted):
            parts.append(ToolUsePart(event.id, event.name, "", signature=event.signature))
        elif isinstance(event, ToolCallDelta):
            call = parts[-1]
            assert isinstance(call, ToolUsePart)
            parts[-1] = ToolUsePart(call.id, call.name, call.arguments + event.fragment, call.signature)
    return Message(Role.ASSISTANT, tuple(parts))


async def test_complete_sends_the_key_in_the_header_and_decodes_the_answer(
    fake: FakeGemini, gemini: GoogleAIStudioUpstream
) -> None:
    request = ChatRequest(
        model="client-name",
        messages=(QUESTION,),
        system=(TextPart("Be brief."),),
        thinking=ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=2048),
    )
    result = await gemini.complete(make_call("http://gemini.test", model="models/gemini-2.5-flash"), request)
    assert result.text() == "Echo: Weather in San Francisco?"
    assert result.model == "gemini-2.5-flash"
    assert result.usage == Usage(input_tokens=16, output_tokens=5)
    (sent,) = fake.requests
    assert sent.method == "POST"
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.query == {}
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == {
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Weather in San Francisco?"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True, "thinkingBudget": 2048}},
    }


async def test_complete_replays_the_recorded_function_call(fake: FakeGemini, gemini: GoogleAIStudioUpstream) -> None:
    fake.replay(fixture("gemini/response_function_call_thought_signature.json"))
    result = await gemini.complete(make_call("http://gemini.test"), ChatRequest(model="x", messages=(QUESTION,)))
    assert result.parts == (
        ToolUsePart(
            "call_1",
            "weather",
            '{"location":"San Francisco"}',
            signature="Eqo+Cqc+Ab4+9vtgONaaz6qwy6WXdp7gCd2w0X+Wz2gaBgY0Gv6A12JKo0y5vQwf9YQFyhMbKr1E9m17VT6HXd7jXzjaGYaE",
        ),
    )
    assert result.finish_reason is FinishReason.TOOL_USE
    assert result.usage == Usage(input_tokens=29, output_tokens=1816, reasoning_tokens=1801)


async def test_two_turn_tool_conversation_sends_the_signature_back(
    fake: FakeGemini, gemini: GoogleAIStudioUpstream
) -> None:
    raw = fixture("gemini/stream_function_call_thought_signature.sse").read_bytes()
    signature = orjson.loads(raw.split(b"\r\n")[0][6:])["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    fake.replay(fixture("gemini/stream_function_call_thought_signature.sse"))
    call = make_call("http://gemini.test")
    first = ChatRequest(model="x", messages=(QUESTION,), tools=(WEATHER,), stream=True)
    events = await collect(gemini.stream(call, first))
    usage = Usage(input_tokens=29, output_tokens=819, reasoning_tokens=804)
    assert events == [
        MessageStarted(id="QHiLaa6LBrb8vdIPoNztsAg", model="gemini-3-pro-preview", usage=usage),
        ToolCallStarted(key=0, id="call_1", name="weather", signature=signature),
        ToolCallDelta(key=0, fragment='{"location":"San Francisco"}'),
        BlockStopped(),
        Finished(FinishReason.TOOL_USE),  # the final usage is the one MessageStarted carried
    ]
    assert fake.requests[0].path == "/v1beta/models/gemini-3-pro-preview:streamGenerateContent"
    assert fake.requests[0].query == {"alt": ["sse"]}

    fake.reply_stream([text_response("It is 18C and cloudy.", model="gemini-3-pro-preview")])
    second = ChatRequest(
        model="x",
        messages=(
            QUESTION,
            assistant_turn(events),
            Message(Role.TOOL, (ToolResultPart("call_1", (TextPart("18C, cloudy"),)),)),
        ),
        tools=(WEATHER,),
        stream=True,
    )
    answer = await collect(gemini.stream(call, second))
    assert TextDelta("It is 18C and cloudy.") in answer
    assert answer[-1] == Finished(FinishReason.END_TURN)
    assert fake.signatures_sent(0) == []
    assert fake.signatures_sent(1) == [signature]
    assert fake.requests[1].body["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "weather", "args": {"location": "San Francisco"}},
                    "thoughtSignature": signature,
                }
            ],
        },
        {"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"result": "18C, cloudy"}}}]},
    ]


async def test_rewritten_tool_names_come_back_as_the_clients(fake: FakeGemini, gemini: GoogleAIStudioUpstream) -> None:
    tool = ToolSpec(name="mcp/search", parameters={"type": "object", "properties": {"q": {"type": "string"}}})
    body = text_response("")
    body["candidates"][0]["content"]["parts"] = [{"functionCall": {"name": "mcp_search", "args": {"q": "x"}}}]
    fake.reply_stream([body])
    events = await collect(
        gemini.stream(make_call("http://gemini.test"), ChatRequest(model="x", messages=(QUESTION,), tools=(tool,)))
    )
    assert fake.requests[0].body["tools"][0]["functionDeclarations"][0]["name"] == "mcp_search"
    assert ToolCallStarted(key=0, id="call_1", name="mcp/search") in events


@pytest.mark.parametrize("streaming", [False, True])
async def test_429_resource_exhausted_carries_the_retry_delay(
    fake: FakeGemini, gemini: GoogleAIStudioUpstream, streaming: bool
) -> None:
    fake.replay(fixture("gemini/error_429_resource_exhausted.json"))
    call = make_call("http://gemini.test")
    request = ChatRequest(model="x", messages=(QUESTION,))
    attempt = anext(gemini.stream(call, request)) if streaming else gemini.complete(call, request)
    with pytest.raises(UpstreamRateLimitedError) as caught:
        await attempt
    assert caught.value.retry_after == pytest.approx(34.4)
    assert caught.value.exhausted is False
    assert caught.value.upstream == "aistudio"


async def test_invalid_key_and_caller_faults(gemini: GoogleAIStudioUpstream, fake: FakeGemini) -> None:
    request = ChatRequest(model="x", messages=(QUESTION,))
    with pytest.raises(UpstreamAuthError):
        await gemini.complete(make_call("http://gemini.test", secret="wrong"), request)
    fake.replay(fixture("gemini/error_400_invalid_argument.json"))
    with pytest.raises(UpstreamRejectedError) as caught:
        await gemini.complete(make_call("http://gemini.test"), request)
    assert caught.value.status == 400
    assert caught.value.message == "Penalty is not enabled for models/gemini-2.5-flash"


async def test_in_stream_errors(fake: FakeGemini, gemini: GoogleAIStudioUpstream) -> None:
    call = make_call("http://gemini.test")
    request = ChatRequest(model="x", messages=(QUESTION,))
    overloaded = error_body(503, "UNAVAILABLE", "The model is overloaded.")
    fake.reply_stream([overloaded])
    with pytest.raises(UpstreamOverloadedError):  # nothing relayed yet: an ordinary error that fails over
        await anext(gemini.stream(call, request))
    partial = text_chunk("Hel")
    fake.reply_stream([partial, overloaded])
    events = await collect(gemini.stream(call, request))
    assert events[1] == TextDelta("Hel")
    assert events[-1] == StreamFailed(kind="overloaded", message="The upstream is overloaded (HTTP 503 UNAVAILABLE).")
    # An error object outside the SSE framing after the 200 (docs/protocols/gemini.md §4) must not pass for an answer.
    fake.reply_sse([*gemini_frames([partial]), b'{\n  "error": {\n    "code": 500\n  }\n}\n'])
    events = await collect(gemini.stream(call, request))
    assert events[-1] == StreamFailed(kind="upstream", message="The upstream stream ended before the answer finished.")


async def test_list_models_pages_and_filters(fake: FakeGemini, gemini: GoogleAIStudioUpstream) -> None:
    fake.page_size = 2
    assert await gemini.list_models(make_call("http://gemini.test").upstream) == ["gemini-2.5-flash", "gemini-2.5-pro"]
    assert [r.query for r in fake.requests] == [{"pageSize": ["1000"]}, {"pageSize": ["1000"], "pageToken": ["2"]}]
    assert all(r.headers["x-goog-api-key"] == KEY for r in fake.requests)


async def test_default_base_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=text_response("hi"))

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        result = await GoogleAIStudioUpstream(http, retry=NO_RETRY).complete(
            make_call(""), ChatRequest(model="x", messages=(QUESTION,))
        )
    assert result.text() == "hi"
    assert (
        str(seen[0].url)
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-preview:generateContent"
    )
    assert "key=" not in str(seen[0].url)


async def test_closing_the_stream_early_cancels_the_upstream_request(
    fake: FakeGemini, gemini: GoogleAIStudioUpstream
) -> None:
    fake.reply_stream([text_chunk(f"part {n} ") for n in range(50)], delay=0.05)
    events = gemini.stream(make_call("http://gemini.test"), ChatRequest(model="x", messages=(QUESTION,)))
    assert isinstance(await anext(events), MessageStarted)
    assert await anext(events) == TextDelta("part 0 ")
    await events.aclose()  # type: ignore[attr-defined]
    assert await fake.wait_disconnect()
    assert fake.outcomes[0].frames_sent < 50


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_over_a_real_socket(transport: str) -> None:
    fake = FakeGemini(keys=[KEY])
    with serve(fake) as base_url:
        http = make_http_client(transport=transport)
        try:
            gemini = GoogleAIStudioUpstream(http, retry=NO_RETRY, ids=counting_ids())
            call = make_call(base_url, model="gemini-2.5-flash")
            request = ChatRequest(model="x", messages=(QUESTION,), stream=True)

            fake.replay(fixture("gemini/stream_thought_summaries.sse"))
            events = await collect(gemini.stream(call, request))
            texts = [e.text for e in events if isinstance(e, TextDelta)]
            assert texts == ["The capital of France", " is Paris."]
            assert events[-2:] == [
                UsageReported(Usage(input_tokens=12, output_tokens=156, reasoning_tokens=148)),
                Finished(FinishReason.END_TURN),
            ]

            fake.replay(fixture("gemini/error_429_resource_exhausted.json"))
            with pytest.raises(UpstreamRateLimitedError) as caught:
                await gemini.complete(call, request)
            assert caught.value.retry_after == pytest.approx(34.4)

            fake.reply_stream([text_chunk("Hel"), text_chunk("lo", finish="STOP")], delay=0.01, cut_after=1)
            events = await collect(gemini.stream(call, request))
            assert events[1] == TextDelta("Hel")
            assert isinstance(events[-1], StreamFailed)

            events = await collect(gemini.stream(call, request))
            assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echo: Weather in San Francisco?"
            assert events[-1] == Finished(FinishReason.END_TURN)
            assert (await gemini.complete(call, request)).text() == "Echo: Weather in San Francisco?"
            assert {r.headers["x-goog-api-key"] for r in fake.requests} == {KEY}
        finally:
            await http.aclose()


async def test_the_fake_speaks_geminis_framing_and_errors(client: httpx.AsyncClient) -> None:
    url = "http://gemini.test/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}
    sse = await client.post(url + "?alt=sse", json=body, headers={"x-goog-api-key": KEY})
    assert sse.headers["content-type"] == "text/event-stream"
    assert sse.content.startswith(b'data: {"candidates"') and sse.content.endswith(b"}\r\n\r\n")
    assert sse.content.count(b"\r\n\r\n") == 3  # "Echo: ", "hi ", "there"
    array = await client.post(url, json=body, headers={"x-goog-api-key": KEY})
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in array.json()] == ["Echo: ", "hi ", "there"]
    anonymous = await client.post(url + "?alt=sse", json=body)
    assert anonymous.status_code == 403
    assert anonymous.json()["error"]["status"] == "PERMISSION_DENIED"
