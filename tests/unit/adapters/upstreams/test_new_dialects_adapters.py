"""The upstream adapters serving the new client dialects over HTTP: a Responses body forwarded to an upstream's
``/responses`` (``responses_api`` option), translated otherwise; a Gemini body forwarded to AI Studio; the mock
answering both."""

from __future__ import annotations

from typing import Any

import attrs
import httpx
import orjson
import pytest

from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams.google_ai_studio import GoogleAIStudioUpstream
from apipod.adapters.upstreams.mock import MockUpstream
from apipod.adapters.upstreams.openai import OpenAIUpstream, option_on
from apipod.domain.catalog import UpstreamKind
from apipod.domain.chat import ChatRequest, FinishReason, Message, Role, TextPart, ThinkingPart, ToolUsePart
from apipod.domain.errors import UpstreamRateLimitedError
from apipod.domain.stream import Finished, MessageStarted, StreamEvent, TextDelta, ThinkingSignature, ToolCallStarted
from tests.fixture_path import fixture
from tests.unit.adapters.upstreams.codex_shape import codex_request
from tests.unit.adapters.upstreams.conftest import KEY, make_call

BASE = "http://upstream.test/v1"


class Recorder:
    """An httpx handler that records requests and answers with a canned body."""

    def __init__(self, body: bytes, *, content_type: str = "text/event-stream", status: int = 200) -> None:
        self.body = body
        self.content_type = content_type
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, content=self.body, headers={"content-type": self.content_type})

    @property
    def sent(self) -> dict[str, Any]:
        return orjson.loads(self.requests[-1].content)  # type: ignore[no-any-return]


def responses_call(*, on: object = True) -> Any:
    return make_call(UpstreamKind.OPENAI, BASE, model="gpt-5.5", options={"responses_api": on})


async def collect(events: Any) -> list[StreamEvent]:
    return [event async for event in events]


async def test_responses_request_streams_through_the_upstream_responses_endpoint() -> None:
    recorder = Recorder(fixture("codex-cli/apply_patch_response_1.sse").read_bytes())
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        events = await collect(OpenAIUpstream(http, retry=NO_RETRY).stream(responses_call(), codex_request()))
    request = recorder.requests[-1]
    assert str(request.url) == f"{BASE}/responses"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    sent = recorder.sent
    assert sent["model"] == "gpt-5.5"
    assert sent["stream"] is True
    assert sent["store"] is False
    assert "client_metadata" not in sent
    assert sent["input"] == codex_request().raw["input"]  # type: ignore[index]
    assert isinstance(events[0], MessageStarted)
    assert any(isinstance(e, ThinkingSignature) for e in events)
    assert ToolCallStarted(key=0, id="call_cap0002", name="apply_patch") in events
    assert events[-1] == Finished(FinishReason.TOOL_USE)


async def test_responses_request_completes_through_the_upstream_responses_endpoint() -> None:
    answer = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-5.5",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "blob"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
        ],
        "usage": {"input_tokens": 10, "output_tokens": 2},
    }
    recorder = Recorder(orjson.dumps(answer), content_type="application/json")
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        result = await OpenAIUpstream(http, retry=NO_RETRY).complete(
            responses_call(on="true"), attrs.evolve(codex_request(), stream=False)
        )
    assert str(recorder.requests[-1].url) == f"{BASE}/responses"
    assert recorder.sent["stream"] is False
    assert result.parts == (ThinkingPart("", signature="blob"), TextPart("Done."))
    assert result.usage.input_tokens == 10


async def test_failed_response_with_success_status_is_an_upstream_error() -> None:
    answer = {"status": "failed", "output": [], "error": {"code": "rate_limit_exceeded", "message": "slow"}}
    recorder = Recorder(orjson.dumps(answer), content_type="application/json")
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        with pytest.raises(UpstreamRateLimitedError) as caught:
            await OpenAIUpstream(http, retry=NO_RETRY).complete(responses_call(), codex_request())
    assert caught.value.upstream == "up"


async def test_responses_http_error_uses_the_openai_error_decoder() -> None:
    error = {"error": {"message": "Quota.", "type": "insufficient_quota", "code": "insufficient_quota"}}
    recorder = Recorder(orjson.dumps(error), content_type="application/json", status=429)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        with pytest.raises(UpstreamRateLimitedError) as caught:
            await anext(OpenAIUpstream(http, retry=NO_RETRY).stream(responses_call(), codex_request()))
    assert caught.value.exhausted


@pytest.mark.parametrize("on", [False, None, "false", 0])
async def test_without_the_option_a_responses_request_is_translated_to_chat(on: object) -> None:
    recorder = Recorder(fixture("openai/chat_stream_text_include_usage.sse").read_bytes())
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        events = await collect(OpenAIUpstream(http, retry=NO_RETRY).stream(responses_call(on=on), codex_request()))
    assert str(recorder.requests[-1].url) == f"{BASE}/chat/completions"
    sent = recorder.sent
    assert "input" not in sent
    assert sent["messages"][0]["role"] == "system"
    assert any(isinstance(e, TextDelta) for e in events)


async def test_delegate_without_responses_never_forwards() -> None:
    recorder = Recorder(fixture("openai/chat_stream_text_include_usage.sse").read_bytes())
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        upstream = OpenAIUpstream(http, retry=NO_RETRY, responses=False)
        await collect(upstream.stream(responses_call(), codex_request()))
    assert str(recorder.requests[-1].url) == f"{BASE}/chat/completions"


async def test_chat_requests_ignore_the_responses_option() -> None:
    recorder = Recorder(fixture("openai/chat_stream_text_include_usage.sse").read_bytes())
    request = ChatRequest(model="m", messages=(Message(Role.USER, (TextPart("hi"),)),), dialect="openai", raw=None)
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        await collect(OpenAIUpstream(http, retry=NO_RETRY).stream(responses_call(), request))
    assert str(recorder.requests[-1].url) == f"{BASE}/chat/completions"


@pytest.mark.parametrize(("value", "on"), [(True, True), ("true", True), ("On", True), (False, False), (1, False)])
def test_option_on(value: object, on: bool) -> None:
    assert option_on(value) is on


async def test_ai_studio_forwards_a_gemini_client_body() -> None:
    raw = orjson.loads(fixture("gemini-cli/read_file_request_2.json").read_bytes())
    request = ChatRequest(
        model="gemini-2.5-pro", messages=(Message(Role.USER, (TextPart("x"),)),), dialect="gemini", raw=raw
    )
    recorder = Recorder(fixture("gemini-cli/read_file_response_2.sse").read_bytes())
    async with httpx.AsyncClient(transport=httpx.MockTransport(recorder)) as http:
        call = make_call(UpstreamKind.GOOGLE_AI_STUDIO, "http://gemini.test", model="gemini-2.5-pro")
        events = await collect(GoogleAIStudioUpstream(http, retry=NO_RETRY).stream(call, request))
    assert str(recorder.requests[-1].url) == (
        "http://gemini.test/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert recorder.sent == {k: raw[k] for k in ("contents", "systemInstruction", "tools", "generationConfig")}
    assert isinstance(events[-1], Finished)


@pytest.mark.parametrize("dialect", ["responses", "gemini"])
async def test_mock_serves_the_new_dialects(dialect: str) -> None:
    request = attrs.evolve(codex_request(), dialect=dialect, raw={"anything": True})
    last = Message(Role.USER, (TextPart("hello mock"),))
    request = attrs.evolve(request, messages=(*request.messages, last))
    call = make_call(UpstreamKind.MOCK, "", model="mock-1")
    result = await MockUpstream().complete(call, request)
    assert result.text() == "Echo: hello mock"
    events = await collect(MockUpstream().stream(call, request))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echo: hello mock"
    call_request = attrs.evolve(request, messages=(*request.messages[:-1], Message(Role.USER, (TextPart("call it"),))))
    tool = (await MockUpstream().complete(call, call_request)).parts[0]
    assert isinstance(tool, ToolUsePart)
    assert tool.name == "exec_command"
