"""AntigravityUpstream against the fake Cloud Code + OAuth server: token refresh and caching with a fake clock,
project discovery, the envelope both ways, the Claude rules, 429 classification, host fallback, the model
list, and one run over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from apipod.adapters.memory.system import FixedClock
from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams._http import make_http_client
from apipod.adapters.upstreams.antigravity import AntigravityUpstream
from apipod.adapters.upstreams.antigravity_errors import AccessTokenRejectedError, decode_error, parse_go_duration
from apipod.application.ports import UpstreamCall
from apipod.domain.catalog import Account, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import (
    ChatRequest,
    FinishReason,
    Message,
    Role,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ThinkingPart,
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
    UpstreamUnavailableError,
)
from apipod.domain.stream import (
    BlockStopped,
    Finished,
    MessageStarted,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_antigravity import CLIENT_ID, CLIENT_SECRET, FakeAntigravity
from tests.fakes.server import serve
from tests.fixture_path import fixture

HOSTS = ["https://daily.test", "https://prod.test"]
TOOL_ID = "toolu_vrtx_01PDbPTJgBJ3AJ8BCnSXvUqk"
SIGNATURE = "ErUBCkYIBRgCKkDexample"
HELLO = ChatRequest(model="x", messages=(Message(Role.USER, (TextPart("Hello, how are you?"),)),))


def make_upstream(*, project: str | None = None, base_url: str = "", **options: Any) -> Upstream:
    settings: dict[str, Any] = {
        "oauth_client_id": CLIENT_ID,
        "oauth_client_secret": CLIENT_SECRET,
        "oauth_token_url": f"{base_url or 'https://oauth.test'}/token",
        "base_urls": [] if base_url else HOSTS,
    }
    settings.update(options)
    return Upstream(
        name="ag",
        kind=UpstreamKind.ANTIGRAVITY,
        base_url=base_url,
        accounts=(Account(0, "refresh-1", project),),
        options=settings,
    )


def make_call(upstream: Upstream, model: str = "claude-sonnet-4-6") -> UpstreamCall:
    return UpstreamCall(upstream, upstream.accounts[0], UpstreamModel(name="m", upstream="ag", upstream_model=model))


@pytest.fixture
def fake() -> FakeAntigravity:
    return FakeAntigravity({"refresh-1": "proj-1"})


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 4, 20, 9, 0, tzinfo=UTC))


@pytest.fixture
async def client(fake: FakeAntigravity) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        yield http


@pytest.fixture
def ag(client: httpx.AsyncClient, clock: FixedClock) -> AntigravityUpstream:
    return AntigravityUpstream(client, clock, retry=NO_RETRY, onboard_poll_interval=0.0)


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def shape(value: Any) -> Any:
    """The key structure of a JSON value: dict keys all the way down, list lengths, no scalar values."""
    if isinstance(value, dict):
        return {key: shape(sub) for key, sub in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return None


# -- tokens -------------------------------------------------------------------------------------------------
async def test_access_token_is_cached_and_refreshed_five_minutes_before_expiry(
    fake: FakeAntigravity, ag: AntigravityUpstream, clock: FixedClock
) -> None:
    call = make_call(make_upstream())
    await ag.complete(call, HELLO)
    await ag.complete(call, HELLO)
    assert fake.refreshes == 1
    clock.advance(3599 - 300 - 1)
    await ag.complete(call, HELLO)
    assert fake.refreshes == 1
    clock.advance(2)
    await ag.complete(call, HELLO)
    assert fake.refreshes == 2
    generations = fake.calls("generateContent")
    assert [r.headers["authorization"] for r in generations] == ["Bearer ya29.fake-1"] * 3 + ["Bearer ya29.fake-2"]
    token_request = next(r for r in fake.requests if r.path == "/token")
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"


async def test_concurrent_requests_share_one_refresh_and_one_discovery(clock: FixedClock) -> None:
    fake = FakeAntigravity({"refresh-1": "discovered-7"})
    fake.token_delay = 0.05
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        ag = AntigravityUpstream(http, clock, retry=NO_RETRY)
        call = make_call(make_upstream())
        results = await asyncio.gather(*(ag.complete(call, HELLO) for _ in range(20)))
    assert {r.text() for r in results} == {"Hello from fake Antigravity."}
    assert fake.refreshes == 1
    assert len(fake.calls("loadCodeAssist")) == 1
    assert {r.body["project"] for r in fake.calls("generateContent")} == {"discovered-7"}


async def test_a_401_drops_the_token_refreshes_once_and_retries(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    call = make_call(make_upstream())
    await ag.complete(call, HELLO)
    fake.revoke_access_tokens()
    result = await ag.complete(call, HELLO)
    assert result.text() == "Hello from fake Antigravity."
    assert fake.refreshes == 2
    assert [r.headers["authorization"] for r in fake.calls("generateContent")][-2:] == [
        "Bearer ya29.fake-1",
        "Bearer ya29.fake-2",
    ]
    fake.revoke_access_tokens()
    events = await collect(ag.stream(call, HELLO))
    assert events[-1] == Finished(FinishReason.END_TURN)
    assert fake.refreshes == 3


async def test_a_failed_refresh_keeps_a_token_that_is_still_valid(
    fake: FakeAntigravity, ag: AntigravityUpstream, clock: FixedClock
) -> None:
    call = make_call(make_upstream())
    await ag.complete(call, HELLO)
    clock.advance(3599 - 100)  # due for refresh, not yet expired
    fake.token_failure = 503
    assert (await ag.complete(call, HELLO)).text() == "Hello from fake Antigravity."
    clock.advance(200)  # expired: nothing to fall back on
    with pytest.raises(UpstreamUnavailableError):
        await ag.complete(call, HELLO)
    fake.token_failure = None
    await ag.complete(call, HELLO)
    assert fake.refreshes == 2


async def test_missing_client_credentials_name_the_option(ag: AntigravityUpstream) -> None:
    upstream = make_upstream()
    upstream = Upstream(
        name="ag",
        kind=UpstreamKind.ANTIGRAVITY,
        accounts=upstream.accounts,
        options={k: v for k, v in upstream.options.items() if k != "oauth_client_secret"},
    )
    with pytest.raises(UpstreamAuthError, match="oauth_client_secret"):
        await ag.complete(make_call(upstream), HELLO)


async def test_a_revoked_refresh_token_is_an_auth_error(ag: AntigravityUpstream) -> None:
    upstream = make_upstream()
    account = Account(3, "revoked")
    call = UpstreamCall(upstream, account, make_call(upstream).model)
    with pytest.raises(UpstreamAuthError, match="invalid_grant"):
        await ag.complete(call, HELLO)


# -- project -------------------------------------------------------------------------------------------------
async def test_project_is_discovered_once_and_a_configured_one_skips_discovery(
    fake: FakeAntigravity, ag: AntigravityUpstream
) -> None:
    await ag.complete(make_call(make_upstream()), HELLO)
    await ag.complete(make_call(make_upstream()), HELLO)
    assert len(fake.calls("loadCodeAssist")) == 1
    assert fake.calls("loadCodeAssist")[0].body == {
        "metadata": {"ideType": "ANTIGRAVITY", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}
    }
    await ag.complete(make_call(make_upstream(project="configured-9")), HELLO)
    assert len(fake.calls("loadCodeAssist")) == 1
    assert [r.body["project"] for r in fake.calls("generateContent")] == ["proj-1", "proj-1", "configured-9"]


async def test_an_account_without_project_is_onboarded(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    fake.projects["refresh-1"] = None
    fake.onboard_polls = 3
    await ag.complete(make_call(make_upstream()), HELLO)
    onboard = fake.calls("onboardUser")
    assert len(onboard) == 3
    assert onboard[0].body["tierId"] == "free-tier"
    assert fake.last.body["project"] == "onboarded-project-1"


# -- envelope ------------------------------------------------------------------------------------------------
async def test_non_streamed_envelope_is_wrapped_and_unwrapped(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    result = await ag.complete(make_call(make_upstream(), "gemini-3-flash"), HELLO)
    assert result.text() == "Hello from fake Antigravity."
    assert result.id == "msg_vrtx_fake"
    assert result.model == "gemini-3-flash"
    assert result.usage == Usage(input_tokens=7, output_tokens=5)
    sent = fake.last
    assert sent.path == "/v1internal:generateContent"
    assert sent.headers["host"] == "daily.test"
    assert sent.headers["user-agent"].startswith("antigravity/")
    assert set(sent.body) == {"project", "model", "userAgent", "requestType", "requestId", "request"}
    assert sent.body["model"] == "gemini-3-flash"
    assert (sent.body["userAgent"], sent.body["requestType"]) == ("antigravity", "agent")
    assert sent.body["requestId"].startswith("agent-")
    assert sent.body["request"]["contents"] == [{"role": "user", "parts": [{"text": "Hello, how are you?"}]}]
    session = sent.body["request"]["sessionId"]
    assert session.startswith("-") and session[1:].isdigit()
    await ag.complete(make_call(make_upstream(), "gemini-3-flash"), HELLO)
    assert fake.last.body["request"]["sessionId"] == session  # stable per conversation
    assert fake.last.body["requestId"] != sent.body["requestId"]


async def test_streamed_claude_thinking_and_tool_call_replay(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    fake.replay(fixture("antigravity/stream_claude_thinking_tool.sse"))
    call = make_call(make_upstream(), "claude-sonnet-4-6-thinking")
    events = await collect(ag.stream(call, HELLO))
    usage = [Usage(input_tokens=410, output_tokens=n) for n in (6, 52)]  # the first and the last of three
    assert events == [
        MessageStarted(id="msg_vrtx_01UDKZG8PWPj9mjajje8d7u7", model="claude-sonnet-4-6-thinking", usage=usage[0]),
        ThinkingDelta("The user wants the weather"),
        ThinkingDelta(" in Paris; call the tool."),
        ThinkingSignature(SIGNATURE),
        ToolCallStarted(key=0, id=TOOL_ID, name="get_weather"),
        ToolCallDelta(key=0, fragment='{"city":"Paris"}'),
        BlockStopped(),
        UsageReported(usage[1]),
        Finished(FinishReason.TOOL_USE),
    ]
    sent = fake.last
    assert sent.path == "/v1internal:streamGenerateContent"
    assert sent.query == {"alt": ["sse"]}
    assert sent.headers["accept"] == "text/event-stream"
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"


async def test_default_stream_is_unwrapped(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    events = await collect(ag.stream(make_call(make_upstream()), HELLO))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello from fake Antigravity."
    assert events[-1] == Finished(FinishReason.END_TURN)
    assert "anthropic-beta" not in fake.last.headers


def claude_tool_loop(**changes: Any) -> ChatRequest:
    weather = ToolSpec(
        name="get_weather",
        description="Current weather for a city",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    )
    messages = (
        Message(Role.USER, (TextPart("What's the weather in Paris?", cache_control={"type": "ephemeral"}),)),
        Message(
            Role.ASSISTANT,
            (
                ThinkingPart("The user wants the weather; call the tool.", SIGNATURE),
                ToolUsePart(id=TOOL_ID, name="get_weather", arguments='{"city": "Paris"}'),
            ),
        ),
        Message(Role.TOOL, (ToolResultPart(tool_use_id=TOOL_ID, content=(TextPart("18C, cloudy"),)),)),
    )
    fields: dict[str, Any] = {
        "model": "claude",
        "messages": messages,
        "system": (TextPart("You are a helpful assistant.", cache_control={"type": "ephemeral"}),),
        "tools": (weather,),
        "thinking": ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=8000),
        "max_output_tokens": 16384,
        "temperature": 0.2,
    }
    fields.update(changes)
    return ChatRequest(**fields)


async def test_claude_tool_loop_request_has_the_reference_envelope_shape(
    fake: FakeAntigravity, ag: AntigravityUpstream
) -> None:
    reference = orjson.loads(fixture("antigravity/request_envelope_claude.json").read_bytes())
    upstream = make_upstream(project="example-project-12345")
    await collect(ag.stream(make_call(upstream, "claude-sonnet-4-6-thinking"), claude_tool_loop()))
    sent = fake.last.body
    assert shape(sent) == shape(reference)
    request = sent["request"]
    assert request["contents"][1:] == reference["request"]["contents"][1:]  # ids, signature, response object
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert request["generationConfig"] == reference["request"]["generationConfig"]  # temperature dropped
    assert request["systemInstruction"] == reference["request"]["systemInstruction"]
    assert sent["project"] == "example-project-12345"
    assert b"cache_control" not in orjson.dumps(sent)


async def test_claude_history_without_signed_thinking_turns_thinking_off(
    fake: FakeAntigravity, ag: AntigravityUpstream
) -> None:
    loop = claude_tool_loop()
    assistant = Message(
        Role.ASSISTANT,
        (ThinkingPart("unsigned thoughts"), ToolUsePart(id=TOOL_ID, name="get_weather", arguments="{}", signature="g")),
    )
    no_args = ToolSpec(name="ping", parameters={"type": "object", "properties": {}})
    request = claude_tool_loop(messages=(loop.messages[0], assistant, loop.messages[2]), tools=(*loop.tools, no_args))
    await ag.complete(make_call(make_upstream(), "claude-opus-4-6-thinking"), request)
    body = fake.last.body["request"]
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "get_weather", "args": {}, "id": TOOL_ID}}]
    assert "thinkingConfig" not in body.get("generationConfig", {})
    ping = body["tools"][0]["functionDeclarations"][1]
    assert ping["name"] == "ping" and ping["parameters"]["properties"]  # VALIDATED needs a property


async def test_gemini_models_keep_camel_case_thinking_and_strict_schemas(
    fake: FakeAntigravity, ag: AntigravityUpstream
) -> None:
    tool = ToolSpec(
        name="lookup",
        parameters={
            "type": "object",
            "properties": {"q": {"type": "string", "minLength": 3, "default": "x"}, "format": {"type": "string"}},
        },
    )
    request = claude_tool_loop(
        tools=(tool,), messages=HELLO.messages, thinking=ThinkingConfig(ThinkingMode.ENABLED, 4096)
    )
    await ag.complete(make_call(make_upstream(), "gemini-2.5-flash"), request)
    body = fake.last.body["request"]
    assert body["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 4096}
    query = body["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]["q"]
    assert "minLength" not in query and "default" not in query
    assert "minLength: 3" in query["description"]
    assert "format" in body["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]  # a name, kept


# -- errors and hosts -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "retry_after"),
    [("error_429_rate_limit_exceeded.json", 2.0), ("error_429_retry_info.json", 3.957525076)],
)
async def test_429_fixtures_are_short_rate_limits_with_the_upstream_delay(
    fake: FakeAntigravity, ag: AntigravityUpstream, name: str, retry_after: float
) -> None:
    fake.replay(fixture(f"antigravity/{name}"))
    with pytest.raises(UpstreamRateLimitedError) as caught:
        await ag.complete(make_call(make_upstream()), HELLO)
    assert caught.value.exhausted is False
    assert caught.value.retry_after == pytest.approx(retry_after)
    assert len(fake.calls("generateContent")) == 1  # a 429 never moves to another host


async def test_exhausted_quota_rests_until_the_reset_time(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    body = orjson.loads(fixture("antigravity/error_429_rate_limit_exceeded.json").read_bytes())
    info = body["error"]["details"][0]
    info["reason"] = "QUOTA_EXHAUSTED"
    info["metadata"] = {"quotaResetTimeStamp": "2026-04-20T14:00:00Z"}
    body["error"]["details"] = [info]
    fake.reply_json(body, status=429)
    with pytest.raises(UpstreamRateLimitedError) as caught:
        await ag.complete(make_call(make_upstream()), HELLO)
    assert caught.value.exhausted is True
    assert caught.value.retry_after == pytest.approx(5 * 3600)


def google_429(message: str, *details: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"error": {"code": 429, "message": message, "status": "RESOURCE_EXHAUSTED", "details": details}}
    )


def error_info(reason: str, **metadata: str) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "metadata": metadata}


NOW = datetime(2026, 4, 20, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "headers", "exhausted", "retry_after"),
    [
        (google_429("Quota exceeded.", error_info("QUOTA_EXHAUSTED", quotaResetDelay="1h2m3s")), {}, True, 3723.0),
        (google_429("Resource has been exhausted (e.g. check quota)."), {}, True, 60.0),
        (google_429("Too many requests."), {}, False, None),
        (google_429("Your quota will reset after 2m30s."), {}, True, 150.0),
        (google_429("x", error_info("RATE_LIMIT_EXCEEDED")), {"retry-after": "7"}, False, 7.0),
        (google_429("x", error_info("INSUFFICIENT_G1_CREDITS_BALANCE")), {}, True, 60.0),
    ],
)
def test_429_classification(body: bytes, headers: dict[str, str], exhausted: bool, retry_after: float | None) -> None:
    error = decode_error(429, body, headers, now=NOW)
    assert isinstance(error, UpstreamRateLimitedError)
    assert (error.exhausted, error.retry_after) == (exhausted, retry_after)


def test_capacity_and_account_errors() -> None:
    capacity = decode_error(429, google_429("x", error_info("MODEL_CAPACITY_EXHAUSTED")), {}, now=NOW)
    assert isinstance(capacity, UpstreamOverloadedError)
    assert capacity.retry_after == 5.0
    assert isinstance(decode_error(401, b"{}", {}, now=NOW), AccessTokenRejectedError)
    verify = {
        "error": {
            "code": 403,
            "status": "PERMISSION_DENIED",
            "message": "Verify your account.",
            "details": [error_info("VALIDATION_REQUIRED")],
        }
    }
    # what it means for the account is the operator's to read (detail); the client reads a generic refusal
    unverified = decode_error(403, orjson.dumps(verify), {}, now=NOW)
    assert isinstance(unverified, UpstreamAuthError)
    assert "verified" in unverified.detail and "Verify your account." in unverified.detail
    assert (
        unverified.message
        == "The upstream refused apipod's credentials (HTTP 403 PERMISSION_DENIED VALIDATION_REQUIRED)."
    )
    banned = {"error": {"code": 403, "message": "This account has been disabled for violation of Terms of Service."}}
    disabled = decode_error(403, orjson.dumps(banned), {}, now=NOW)
    assert "Google has disabled this Antigravity account" in disabled.detail
    assert "disabled" not in disabled.message
    rejected = decode_error(400, b'{"error": {"code": 400, "message": "bad schema"}}', {}, now=NOW)
    assert isinstance(rejected, UpstreamRejectedError) and rejected.message == "bad schema"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("479.417207ms", 0.479417207), ("1.5s", 1.5), ("1h2m3s", 3723.0), ("0s", 0.0), ("3", None), ("1x", None)],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_go_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


async def test_host_fallback_on_5xx_and_connection_errors(fake: FakeAntigravity, clock: FixedClock) -> None:
    fake.host_status["daily.test"] = 503
    transport = StreamingASGITransport(fake)

    async def route(request: httpx.Request) -> httpx.Response:
        if request.url.host == "down.test":
            raise httpx.ConnectError("connection refused", request=request)
        return await transport.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(route)) as http:
        ag = AntigravityUpstream(http, clock, retry=NO_RETRY)
        upstream = make_upstream(base_urls=["https://down.test", *HOSTS])
        result = await ag.complete(make_call(upstream), HELLO)
        events = await collect(ag.stream(make_call(upstream), HELLO))
    assert result.text() == "Hello from fake Antigravity."
    assert events[-1] == Finished(FinishReason.END_TURN)
    assert [r.headers["host"] for r in fake.calls("generateContent")] == ["daily.test", "prod.test"]
    assert [r.headers["host"] for r in fake.calls("streamGenerateContent")] == ["daily.test", "prod.test"]
    assert fake.calls("loadCodeAssist")[-1].headers["host"] == "prod.test"


async def test_a_bad_request_is_not_retried_on_another_host(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    fake.reply_error(400, "INVALID_ARGUMENT", "Invalid `signature` in `thinking` block")
    with pytest.raises(UpstreamRejectedError, match="signature"):
        await ag.complete(make_call(make_upstream()), HELLO)
    assert len(fake.calls("generateContent")) == 1


async def test_list_models_skips_internal_ids(fake: FakeAntigravity, ag: AntigravityUpstream) -> None:
    models = await ag.list_models(make_upstream(project="proj-1"))
    assert models == ["claude-sonnet-4-6", "claude-opus-4-6-thinking", "gemini-3-flash"]
    assert fake.last.path == "/v1internal:fetchAvailableModels"
    assert fake.last.body == {"project": "proj-1"}


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_over_a_real_socket(clock: FixedClock, transport: str) -> None:
    fake = FakeAntigravity({"refresh-1": "proj-1"})
    with serve(fake) as base_url:
        http = make_http_client(transport=transport)
        try:
            ag = AntigravityUpstream(http, clock, retry=NO_RETRY)
            call = make_call(make_upstream(base_url=base_url), "claude-sonnet-4-6-thinking")
            fake.replay(fixture("antigravity/stream_claude_thinking_tool.sse"))
            events = await collect(ag.stream(call, claude_tool_loop()))
            assert ToolCallStarted(key=0, id=TOOL_ID, name="get_weather") in events
            assert events[-1] == Finished(FinishReason.TOOL_USE)
            fake.replay(fixture("antigravity/error_429_retry_info.json"))
            with pytest.raises(UpstreamRateLimitedError):
                await ag.complete(call, HELLO)
            assert (await ag.complete(call, HELLO)).text() == "Hello from fake Antigravity."
            assert await ag.list_models(call.upstream) == [
                "claude-sonnet-4-6",
                "claude-opus-4-6-thinking",
                "gemini-3-flash",
            ]
            assert fake.refreshes == 1
        finally:
            await http.aclose()
