"""CopilotUpstream against the fake GitHub + Copilot server: token exchange, caching and refresh under a fake
clock, single-flight refresh, chat (OpenAI-compatible and native messages), model list, auth failures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from apipod.adapters.memory.system import FixedClock
from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams.copilot import CopilotUpstream, copilot_model_name, initiator
from apipod.adapters.upstreams.copilot_auth import DEFAULT_API_BASE, api_base
from apipod.application.ports import UpstreamCall
from apipod.dialects import anthropic as anthropic_dialect
from apipod.dialects import openai as openai_dialect
from apipod.domain.catalog import Account, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import (
    ChatRequest,
    FinishReason,
    ImagePart,
    Message,
    Role,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
    Usage,
)
from apipod.domain.errors import UpstreamAuthError, UpstreamRejectedError, UpstreamUnavailableError
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    UsageReported,
)
from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_copilot import GITHUB_TOKEN, TOKEN_PATH, FakeCopilot
from tests.fakes.scripted import Reply
from tests.fakes.server import serve
from tests.fixture_path import fixture

HELLO = ChatRequest(model="m", messages=(Message(Role.USER, (TextPart("Hi"),)),))
FIXTURE_API_HOST = "api.individual.githubcopilot.com"  # endpoints.api of token_response.json


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def fake(clock: FixedClock) -> FakeCopilot:
    return FakeCopilot(now=lambda: clock.now().timestamp())


@pytest.fixture
async def client(fake: FakeCopilot) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        yield http


@pytest.fixture
def copilot(client: httpx.AsyncClient, clock: FixedClock) -> CopilotUpstream:
    return CopilotUpstream(client, clock, retry=NO_RETRY)


def make_call(
    model: str = "gpt-4.1", *, secret: str = GITHUB_TOKEN, base_url: str = "", **options: Any
) -> UpstreamCall:
    account = Account(0, secret)
    upstream = Upstream(
        name="copilot", kind=UpstreamKind.COPILOT, base_url=base_url, accounts=(account,), options=options
    )
    return UpstreamCall(upstream, account, UpstreamModel(name="m", upstream="copilot", upstream_model=model))


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


FIXTURE_STREAM = [
    MessageStarted(id="chatcmpl-ExampleCopilot01", model="gpt-4.1-2025-04-14"),
    TextDelta("Hello"),
    TextDelta("!"),
    UsageReported(Usage(input_tokens=9, output_tokens=2)),
    Finished(FinishReason.END_TURN),
]


# -- token exchange and caching ------------------------------------------------------------------------------
async def test_exchanges_the_github_token_once_and_reuses_the_copilot_token(
    copilot: CopilotUpstream, fake: FakeCopilot
) -> None:
    first = await copilot.complete(make_call(), HELLO)
    second = await copilot.complete(make_call(), HELLO)

    assert first.text() == second.text() == "Hello!"
    assert len(fake.exchanges) == 1
    exchange = fake.exchanges[0].headers
    assert exchange["authorization"] == f"token {GITHUB_TOKEN}"
    assert exchange["editor-version"] == "vscode/1.104.3"
    assert exchange["editor-plugin-version"] == "copilot-chat/0.26.7"
    assert exchange["user-agent"] == "GitHubCopilotChat/0.26.7"
    assert exchange["x-github-api-version"] == "2025-04-01"
    chats = fake.chat_requests()
    assert [r.headers["authorization"] for r in chats] == [f"Bearer {fake.issued[0]}"] * 2
    assert {r.headers["host"] for r in fake.api_requests} == {FIXTURE_API_HOST}


async def test_a_configured_token_url_base_url_and_editor_identity_are_used(
    copilot: CopilotUpstream, fake: FakeCopilot
) -> None:
    call = make_call(
        base_url="https://copilot.internal.example:8443/",
        token_url="https://ghe.example/api/v3/copilot_internal/v2/token",
        editor_version="vscode/1.200.0",
        editor_plugin_version="copilot-chat/0.40.0",
        user_agent="GitHubCopilotChat/0.40.0",
        integration_id="copilot-developer-cli",
    )
    await copilot.complete(call, HELLO)

    assert fake.exchanges[0].headers["host"] == "ghe.example"
    assert fake.exchanges[0].headers["editor-version"] == "vscode/1.200.0"
    chat = fake.chat_requests()[0]
    assert chat.headers["host"] == "copilot.internal.example:8443"
    assert chat.path == "/chat/completions"
    assert chat.headers["editor-version"] == "vscode/1.200.0"
    assert chat.headers["editor-plugin-version"] == "copilot-chat/0.40.0"
    assert chat.headers["user-agent"] == "GitHubCopilotChat/0.40.0"
    assert chat.headers["copilot-integration-id"] == "copilot-developer-cli"


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ("https://api.business.githubcopilot.com", "https://api.business.githubcopilot.com"),
        ("https://API.Enterprise.GithubCopilot.com/", "https://api.enterprise.githubcopilot.com"),
        ("http://api.githubcopilot.com", DEFAULT_API_BASE),
        ("https://githubcopilot.com.evil.example", DEFAULT_API_BASE),
        ("https://evilgithubcopilot.com", DEFAULT_API_BASE),
        ("https://user:pw@api.githubcopilot.com", DEFAULT_API_BASE),
        ("https://api.githubcopilot.com:8443", DEFAULT_API_BASE),
        (None, DEFAULT_API_BASE),
    ],
)
def test_only_https_hosts_under_githubcopilot_com_are_trusted(api: str | None, expected: str) -> None:
    assert api_base({"api": api} if api is not None else {}) == expected


async def test_an_untrusted_endpoint_falls_back_to_the_public_api(clock: FixedClock) -> None:
    fake = FakeCopilot(now=lambda: clock.now().timestamp(), api="https://collector.evil.example")
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        await CopilotUpstream(http, clock, retry=NO_RETRY).complete(make_call(), HELLO)
    assert {r.headers["host"] for r in fake.api_requests} == {"api.githubcopilot.com"}


# -- refresh under a fake clock ------------------------------------------------------------------------------
async def test_the_token_is_refreshed_at_refresh_in_before_it_expires(
    copilot: CopilotUpstream, fake: FakeCopilot, clock: FixedClock
) -> None:
    await copilot.complete(make_call(), HELLO)
    clock.advance(1499)
    await copilot.complete(make_call(), HELLO)
    assert len(fake.exchanges) == 1
    clock.advance(2)  # 1501 s: past refresh_in (1500), still 299 s before expiry
    await copilot.complete(make_call(), HELLO)
    assert len(fake.exchanges) == 2
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {fake.issued[1]}"


@pytest.mark.parametrize(("lifetime", "refresh_in", "fresh_until"), [(1800, None, 1500), (400, None, 200)])
async def test_without_refresh_in_the_margin_or_half_life_decides(
    clock: FixedClock, lifetime: float, refresh_in: float | None, fresh_until: float
) -> None:
    fake = FakeCopilot(now=lambda: clock.now().timestamp(), lifetime=lifetime, refresh_in=refresh_in)
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        copilot = CopilotUpstream(http, clock, retry=NO_RETRY)
        await copilot.complete(make_call(), HELLO)
        clock.advance(fresh_until - 1)
        await copilot.complete(make_call(), HELLO)
        assert len(fake.exchanges) == 1
        clock.advance(2)
        await copilot.complete(make_call(), HELLO)
        assert len(fake.exchanges) == 2


async def test_fifty_concurrent_requests_at_expiry_refresh_the_token_once(
    copilot: CopilotUpstream, fake: FakeCopilot, clock: FixedClock
) -> None:
    await copilot.complete(make_call(), HELLO)
    clock.advance(1600)
    fake.exchange_delay = 0.05  # the refresh is in flight while the others arrive

    results = await asyncio.gather(*(copilot.complete(make_call(), HELLO) for _ in range(50)))

    assert [r.text() for r in results] == ["Hello!"] * 50
    assert len(fake.exchanges) == 2
    assert {r.headers["authorization"] for r in fake.chat_requests()[1:]} == {f"Bearer {fake.issued[1]}"}


async def test_a_failed_refresh_keeps_using_a_token_that_has_not_expired(
    copilot: CopilotUpstream, fake: FakeCopilot, clock: FixedClock
) -> None:
    await copilot.complete(make_call(), HELLO)
    clock.advance(1600)
    fake.exchange_replies.append(Reply(status=502, body=b"Bad gateway"))
    await copilot.complete(make_call(), HELLO)
    assert fake.chat_requests()[-1].headers["authorization"] == f"Bearer {fake.issued[0]}"

    clock.advance(300)  # now past expires_at: a failing exchange is an error
    fake.exchange_replies.append(Reply(status=502, body=b"Bad gateway"))
    with pytest.raises(UpstreamUnavailableError):
        await copilot.complete(make_call(), HELLO)


# -- token exchange failures ---------------------------------------------------------------------------------
async def test_a_revoked_github_token_is_an_auth_error_that_says_to_log_in_again(copilot: CopilotUpstream) -> None:
    with pytest.raises(UpstreamAuthError, match="apipod copilot login"):
        await copilot.complete(make_call(secret="ghu_revoked"), HELLO)


async def test_a_user_without_a_copilot_seat_is_an_auth_error(clock: FixedClock) -> None:
    fake = FakeCopilot(now=lambda: clock.now().timestamp(), seatless=["ghu_noseat"])
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        with pytest.raises(UpstreamAuthError, match=r"HTTP 403.*no Copilot access"):
            await CopilotUpstream(http, clock, retry=NO_RETRY).complete(make_call(secret="ghu_noseat"), HELLO)
    assert fake.chat_requests() == []


async def test_a_404_from_the_exchange_is_an_auth_error(copilot: CopilotUpstream, fake: FakeCopilot) -> None:
    fake.exchange_replies.append(Reply(status=404, body={"message": "Not Found"}))
    with pytest.raises(UpstreamAuthError, match="HTTP 404"):
        await copilot.complete(make_call(), HELLO)


# -- chat ----------------------------------------------------------------------------------------------------
async def test_complete_reads_copilots_answer_and_sends_its_headers(
    copilot: CopilotUpstream, fake: FakeCopilot
) -> None:
    result = await copilot.complete(make_call(), HELLO)

    assert result.text() == "Hello!"
    assert result.model == "gpt-4.1-2025-04-14"
    assert result.finish_reason is FinishReason.END_TURN
    assert result.usage == Usage(input_tokens=9, output_tokens=2)
    chat = fake.chat_requests()[0]
    assert chat.path == "/chat/completions"
    assert chat.body == {"model": "gpt-4.1", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
    assert chat.headers["copilot-integration-id"] == "vscode-chat"
    assert chat.headers["openai-intent"] == "conversation-panel"
    assert chat.headers["x-initiator"] == "user"
    assert chat.headers["x-github-api-version"] == "2025-04-01"
    assert uuid.UUID(chat.headers["x-request-id"]).version == 4
    assert "copilot-vision-request" not in chat.headers
    assert "x-api-key" not in chat.headers


async def test_stream_reads_usage_from_the_finish_chunk(copilot: CopilotUpstream, fake: FakeCopilot) -> None:
    events = await collect(copilot.stream(make_call(), HELLO))

    assert events == FIXTURE_STREAM
    body = fake.chat_requests()[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_stream_over_a_real_socket(clock: FixedClock) -> None:
    fake = FakeCopilot(now=lambda: clock.now().timestamp())
    with serve(fake) as base_url:
        call = make_call(base_url=base_url, token_url=base_url + TOKEN_PATH)
        async with httpx.AsyncClient() as http:
            copilot = CopilotUpstream(http, clock, retry=NO_RETRY)
            events = await collect(copilot.stream(call, HELLO))
            result = await copilot.complete(call, HELLO)
    assert events == FIXTURE_STREAM
    assert result.usage == Usage(input_tokens=9, output_tokens=2)
    assert len(fake.exchanges) == 1


async def test_assistant_content_parts_are_flattened_to_a_string(copilot: CopilotUpstream, fake: FakeCopilot) -> None:
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
    }
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "Hi"},
            assistant,
            {"role": "user", "content": "Again"},
        ],
    }
    result = await copilot.complete(make_call(), openai_dialect.decode_request(body))

    assert result.text() == "Hello!"
    sent = fake.chat_requests()[0].body["messages"]
    assert sent[1] == {"role": "assistant", "content": "Hello"}
    assert assistant["content"][0] == {"type": "text", "text": "Hel"}  # the client's body is untouched


async def test_an_image_sets_the_vision_header(copilot: CopilotUpstream, fake: FakeCopilot) -> None:
    image = ImagePart(media_type="image/png", data="iVBORw0KGgo=")
    request = ChatRequest(model="m", messages=(Message(Role.USER, (TextPart("What is it?"), image)),))
    await copilot.complete(make_call(), request)
    assert fake.chat_requests()[0].headers["copilot-vision-request"] == "true"


async def test_a_model_copilot_does_not_serve_is_passed_on_as_rejected(copilot: CopilotUpstream) -> None:
    with pytest.raises(UpstreamRejectedError) as caught:
        await copilot.complete(make_call("o9-ultra"), HELLO)
    assert caught.value.status == 400
    assert caught.value.message == "The requested model is not supported."


# -- native messages -----------------------------------------------------------------------------------------
async def test_a_model_with_a_messages_endpoint_is_served_natively(copilot: CopilotUpstream, fake: FakeCopilot) -> None:
    request = anthropic_dialect.decode_request(
        {"model": "m", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}]},
        {"anthropic-beta": "interleaved-thinking-2025-05-14,claude-code-20250219,context-1m-2025-08-07"},
    )
    events = await collect(copilot.stream(make_call("claude-sonnet-4-5"), request))
    result = await copilot.complete(make_call("claude-sonnet-4.5"), request)

    assert any(isinstance(e, ThinkingDelta) for e in events)
    assert any(isinstance(e, ThinkingSignature) and e.signature for e in events)
    assert isinstance(events[-1], Finished)
    assert result.text() == "Hello!"
    native = [r for r in fake.chat_requests() if r.path == "/v1/messages"]
    assert len(native) == 2
    assert native[0].body["model"] == "claude-sonnet-4.5"
    headers = native[0].headers
    assert headers["authorization"] == f"Bearer {fake.issued[0]}"
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "x-api-key" not in headers
    assert headers["x-initiator"] == "user"
    assert [r.path for r in fake.api_requests].count("/models") == 1  # the model list is cached


async def test_a_model_without_a_messages_endpoint_uses_chat_completions(
    copilot: CopilotUpstream, fake: FakeCopilot
) -> None:
    fake.models_body["data"][0]["supported_endpoints"] = ["/chat/completions"]
    await copilot.complete(make_call("claude-sonnet-4.5"), HELLO)
    assert fake.chat_requests()[0].path == "/chat/completions"


# -- model list ----------------------------------------------------------------------------------------------
async def test_list_models_keeps_enabled_chat_models(copilot: CopilotUpstream, fake: FakeCopilot) -> None:
    entry = orjson.loads(fixture("copilot/models_response.json").read_bytes())["data"][1]
    fake.models_body["data"] += [
        {**entry, "id": "gpt-disabled", "policy": {"state": "disabled"}},
        {**entry, "id": "gpt-hidden", "model_picker_enabled": False},
    ]
    call = make_call()
    assert await copilot.list_models(call.upstream) == ["claude-sonnet-4.5", "gpt-4.1"]


# -- 401 from the chat API -----------------------------------------------------------------------------------
async def test_a_401_drops_the_token_and_retries_once_with_a_fresh_one(
    copilot: CopilotUpstream, fake: FakeCopilot
) -> None:
    await copilot.complete(make_call(), HELLO)
    fake.expire_tokens()

    events = await collect(copilot.stream(make_call(), HELLO))

    assert events == FIXTURE_STREAM
    assert len(fake.exchanges) == 2
    auths = [r.headers["authorization"] for r in fake.chat_requests()]
    assert auths == [f"Bearer {fake.issued[0]}", f"Bearer {fake.issued[0]}", f"Bearer {fake.issued[1]}"]


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_second_401_is_an_auth_error_and_the_token_is_not_kept(
    copilot: CopilotUpstream, fake: FakeCopilot, streaming: bool
) -> None:
    await copilot.complete(make_call(), HELLO)
    unauthorized = {"error": {"message": "unauthorized: token expired", "code": "unauthorized"}}
    fake.reply_json(unauthorized, status=401)
    fake.reply_json(unauthorized, status=401)

    attempt = collect(copilot.stream(make_call(), HELLO)) if streaming else copilot.complete(make_call(), HELLO)
    with pytest.raises(UpstreamAuthError):
        await attempt
    assert len(fake.exchanges) == 2
    await copilot.complete(make_call(), HELLO)
    assert len(fake.exchanges) == 3  # the refused token was dropped again


# -- request shaping -----------------------------------------------------------------------------------------
def _msg(role: Role, *parts: Any) -> Message:
    return Message(role, tuple(parts))


CALL = ToolUsePart(id="call_1", name="weather", arguments="{}")
RESULT = ToolResultPart(tool_use_id="call_1", content=(TextPart("sunny"),))


@pytest.mark.parametrize(
    ("messages", "dialect", "expected"),
    [
        ((_msg(Role.USER, TextPart("Hi")),), "openai", "user"),
        (
            (
                _msg(Role.USER, TextPart("Hi")),
                _msg(Role.ASSISTANT, TextPart("Hello")),
                _msg(Role.USER, TextPart("And?")),
            ),
            "openai",
            "user",
        ),
        ((_msg(Role.USER, TextPart("Hi")), _msg(Role.ASSISTANT, CALL), _msg(Role.TOOL, RESULT)), "openai", "agent"),
        (
            (_msg(Role.USER, TextPart("Hi")), _msg(Role.ASSISTANT, CALL), _msg(Role.USER, TextPart("x"))),
            "openai",
            "agent",
        ),
        (
            (_msg(Role.ASSISTANT, CALL), _msg(Role.TOOL, RESULT), _msg(Role.USER, TextPart("note"))),
            "anthropic",
            "agent",
        ),
        ((_msg(Role.ASSISTANT, CALL), _msg(Role.TOOL, RESULT), _msg(Role.USER, TextPart("new"))), "openai", "user"),
        ((_msg(Role.USER, TextPart("Hi")), _msg(Role.ASSISTANT, ThinkingPart("hmm"))), "anthropic", "agent"),
    ],
)
def test_initiator_marks_only_tool_loop_continuations_as_agent(
    messages: tuple[Message, ...], dialect: str, expected: str
) -> None:
    assert initiator(ChatRequest(model="m", messages=messages, dialect=dialect)) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4.5"),
        ("claude-opus-4-1", "claude-opus-4.1"),
        ("claude-sonnet-4", "claude-sonnet-4"),
        ("gpt-4.1", "gpt-4.1"),
    ],
)
def test_anthropic_model_ids_are_spelled_with_dots(name: str, expected: str) -> None:
    assert copilot_model_name(name) == expected
