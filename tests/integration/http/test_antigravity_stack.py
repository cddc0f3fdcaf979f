"""Full stack over real sockets: the official openai and anthropic SDKs -> ``apipod serve`` -> Antigravity
(tests/fakes/fake_antigravity.py: Google's OAuth token endpoint plus the Cloud Code ``v1internal`` API, with
its envelopes), fixtures replayed byte for byte.

``gemini-3-flash`` goes the Gemini way (thought signatures on function calls); ``claude-sonnet-4-6-thinking``
the Claude-through-Antigravity way (signed thought parts, call ids, VALIDATED tools). The token-refresh and
rotation tests start their own gateway: access tokens and rests are process state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.fake_antigravity import CLIENT_ID, CLIENT_SECRET, FakeAntigravity
from tests.fakes.scripted import Recorded, sse_frames_from_fixture
from tests.fakes.server import serve
from tests.fixture_path import fixture
from tests.integration.harness import (
    ApipodProcess,
    ProviderStack,
    blocks,
    catalog,
    chat,
    chat_stream,
    finish_reasons,
    message,
    message_stream,
    model,
    plan,
    provider,
    stream_text,
    stream_tool_calls,
)

REFRESH_A = "1//0refresh-token-account-a"
REFRESH_B = "1//0refresh-token-account-b"
FLASH = "gemini-3-flash"
CLAUDE = "claude-sonnet-4-6-thinking"
ALIASES = 'aliases = [{ name = "claude", routes = [{ model = "claude", weight = 1 }] }]'
GENERATE = ("/v1internal:generateContent", "/v1internal:streamGenerateContent")

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "City name", "minLength": 2},
        "days": {"type": "integer", "minimum": 1},
    },
    "required": ["city"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER_SCHEMA},
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": WEATHER_SCHEMA,
}
# Antigravity answers 400 to minLength/minimum although plain Gemini takes them: they become hints (§5).
WEATHER_DECLARATION = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name (minLength: 2)"},
            "days": {"type": "integer", "description": "(minimum: 1)"},
        },
        "required": ["city"],
    },
}
# antigravity/stream_claude_thinking_tool.sse
CLAUDE_THINKING = "The user wants the weather in Paris; call the tool."
CLAUDE_SIGNATURE = "ErUBCkYIBRgCKkDexample"
CLAUDE_CALL_ID = "toolu_vrtx_01PDbPTJgBJ3AJ8BCnSXvUqk"


def antigravity_provider(url: str, accounts: list[str], *, projects: list[str] | None = None) -> str:
    extra = (
        f'oauth_token_url = "{url}/token"\noauth_client_id = "{CLIENT_ID}"\noauth_client_secret = "{CLIENT_SECRET}"\n'
    )
    if projects:
        extra += "projects = [" + ", ".join(f'"{p}"' for p in projects) + "]\n"
    return provider("ag", "antigravity", url, accounts=accounts, extra=extra)


def gateway_for(tmp: Path, url: str, accounts: list[str], *, projects: list[str] | None = None) -> ApipodProcess:
    """Not started: use it as a context manager."""
    toml = catalog(
        antigravity_provider(url, accounts, projects=projects),
        models=[model("flash", "ag", FLASH), model("claude", "ag", CLAUDE)],
        plans=[plan("pro", {"flash": 1}, extra=ALIASES)],
    )
    return ApipodProcess(catalog=toml, tmp=tmp)


class Stack(ProviderStack[FakeAntigravity]):
    def generations(self) -> list[Recorded]:
        return [r for r in self.fake.requests if r.path in GENERATE]

    @property
    def last(self) -> Recorded:
        return self.generations()[-1]

    def signatures_sent(self) -> list[str | None]:
        """The ``thoughtSignature`` of every functionCall part of the last generation request."""
        return [
            part.get("thoughtSignature")
            for content in self.last.body["request"]["contents"]
            for part in content["parts"]
            if "functionCall" in part
        ]


def tokens(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["input_tokens"], row["output_tokens"], row["cached_input_tokens"], row["reasoning_tokens"]


def load(relative: str) -> Any:
    return orjson.loads(fixture(relative).read_bytes())


def gemini_chunks(relative: str) -> list[Any]:
    """The chunks of a recorded Gemini stream, to be sent again inside Antigravity's envelope."""
    return [orjson.loads(frame.strip().removeprefix(b"data: ")) for frame in sse_frames_from_fixture(fixture(relative))]


def candidate(*parts: dict[str, Any], finish: str | None = None, **usage: int) -> dict[str, Any]:
    body: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": list(parts)}}], "modelVersion": FLASH}
    if finish:
        body["candidates"][0]["finishReason"] = finish
    if usage:
        body["usageMetadata"] = {**usage, "totalTokenCount": sum(usage.values())}
    return body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    fake = FakeAntigravity({REFRESH_A: "proj-account-a"})
    with serve(fake) as url, gateway_for(tmp_path_factory.mktemp("antigravity"), url, [REFRESH_A]) as gateway:
        yield Stack(fake, gateway)


@pytest.fixture(autouse=True)
def _clean_script(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").fake.replies.clear()


# -- text ------------------------------------------------------------------------------------------------------
def test_openai_text_non_streaming_in_the_envelope(stack: Stack) -> None:
    key, key_id = stack.key("openai-text")
    answer = chat(
        stack.openai(key),
        model="pro",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}],
    )
    assert answer.model == "pro"
    assert answer.choices[0].message.content == "Hello from fake Antigravity."
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, 5)

    sent = stack.last
    assert sent.path == "/v1internal:generateContent"
    assert sent.headers["authorization"].startswith("Bearer ya29.fake-")
    assert sent.headers["user-agent"].startswith("antigravity/")
    body = sent.body
    assert (body["project"], body["model"], body["userAgent"], body["requestType"]) == (
        "proj-account-a",
        FLASH,
        "antigravity",
        "agent",
    )
    assert body["requestId"].startswith("agent-")
    assert body["request"]["contents"] == [{"role": "user", "parts": [{"text": "Hello?"}]}]
    assert body["request"]["systemInstruction"] == {"role": "user", "parts": [{"text": "Be brief."}]}
    assert body["request"]["sessionId"].startswith("-")
    # The refresh token was traded once and the project discovered once, for every request of the module.
    assert stack.fake.refreshes == 1
    assert len(stack.fake.calls("loadCodeAssist")) == 1
    [row] = stack.rows(key_id)
    assert (row["status"], row["routed_model"], row["upstream_provider"]) == ("success", "flash", "ag/#0")
    assert tokens(row) == (7, 5, 0, 0)


def test_openai_text_streaming_unwraps_each_chunk(stack: Stack) -> None:
    key, key_id = stack.key("openai-stream")
    chunks = chat_stream(stack.openai(key), model="pro", messages=[{"role": "user", "content": "Hello?"}])
    assert stream_text(chunks) == "Hello from fake Antigravity."
    assert finish_reasons(chunks) == ["stop"]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 5)
    sent = stack.last
    assert (sent.path, sent.query["alt"]) == ("/v1internal:streamGenerateContent", ["sse"])
    assert sent.headers["accept"] == "text/event-stream"
    [row] = stack.rows(key_id)
    assert tokens(row) == (7, 5, 0, 0)


def test_anthropic_text_with_cached_and_thought_tokens(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-text")
    usage = {"promptTokenCount": 900, "candidatesTokenCount": 11, "cachedContentTokenCount": 800}
    stack.fake.reply_response(candidate({"text": "Cached hello."}, finish="STOP", thoughtsTokenCount=40, **usage))
    client = stack.anthropic(key)
    answer = message(client, model="pro", max_tokens=300, messages=[{"role": "user", "content": "Hi"}])
    assert blocks(answer) == [{"type": "text", "text": "Cached hello."}]
    assert (answer.usage.input_tokens, answer.usage.cache_read_input_tokens, answer.usage.output_tokens) == (
        100,
        800,
        51,
    )
    assert stack.last.body["request"]["generationConfig"]["maxOutputTokens"] == 300

    stack.fake.reply_stream(
        [
            candidate({"text": "Streamed "}, promptTokenCount=20, candidatesTokenCount=1),
            candidate({"text": "hello."}, finish="STOP", promptTokenCount=20, candidatesTokenCount=3),
        ]
    )
    events, final = message_stream(client, model="pro", max_tokens=300, messages=[{"role": "user", "content": "Hi"}])
    assert blocks(final) == [{"type": "text", "text": "Streamed hello."}]
    assert events.count("text") == 2
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, 3)
    assert [tokens(r) for r in stack.rows(key_id, 2)] == [(20, 3, 0, 0), (900, 51, 800, 40)]


# -- tools (Gemini model) --------------------------------------------------------------------------------------
PARIS = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
TOKYO = {"functionCall": {"name": "get_weather", "args": {"city": "Tokyo"}}}


def test_openai_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.key("openai-stream-tools")
    stack.fake.reply_stream(
        [
            candidate(PARIS, promptTokenCount=40, candidatesTokenCount=5),
            candidate(TOKYO, finish="STOP", promptTokenCount=40, candidatesTokenCount=10),
        ]
    )
    chunks = chat_stream(
        stack.openai(key),
        model="pro",
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL],
    )
    calls = stream_tool_calls(chunks)
    assert [(calls[i]["name"], orjson.loads(calls[i]["arguments"])) for i in (0, 1)] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert calls[0]["id"] != calls[1]["id"]
    assert finish_reasons(chunks) == ["tool_calls"]
    assert stack.last.body["request"]["tools"] == [{"functionDeclarations": [WEATHER_DECLARATION]}]
    [row] = stack.rows(key_id)
    assert tokens(row) == (40, 10, 0, 0)


def test_anthropic_non_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, _ = stack.key("anthropic-tools")
    stack.fake.reply_response(candidate(PARIS, TOKYO, finish="STOP", promptTokenCount=40, candidatesTokenCount=12))
    answer = message(
        stack.anthropic(key),
        model="pro",
        max_tokens=512,
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL_ANTHROPIC],
    )
    content = blocks(answer)
    assert [(b["type"], b["name"], b["input"]) for b in content] == [
        ("tool_use", "get_weather", {"city": "Paris"}),
        ("tool_use", "get_weather", {"city": "Tokyo"}),
    ]
    assert content[0]["id"] != content[1]["id"]
    assert answer.stop_reason == "tool_use"


# -- thought signatures, Gemini through Antigravity ------------------------------------------------------------
def test_openai_tool_turns_carry_the_gemini_thought_signature(stack: Stack) -> None:
    key, key_id = stack.key("openai-signature")
    answer_body = load("gemini/response_function_call_thought_signature.json")
    signature = answer_body["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    stack.fake.reply_response(answer_body)
    client = stack.openai(key)
    question = {"role": "user", "content": "Weather in San Francisco?"}
    first = chat(client, model="pro", messages=[question], tools=[WEATHER_TOOL])
    [call] = first.choices[0].message.tool_calls
    assert call.model_extra == {"extra_content": {"google": {"thought_signature": signature}}}
    assert (call.function.name, orjson.loads(call.function.arguments)) == ("weather", {"location": "San Francisco"})

    stack.fake.reply_response(candidate({"text": "Sunny."}, finish="STOP", promptTokenCount=60, candidatesTokenCount=2))
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    second = chat(
        client,
        model="pro",
        messages=[question, assistant, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}],
        tools=[WEATHER_TOOL],
    )
    assert second.choices[0].message.content == "Sunny."
    assert stack.signatures_sent() == [signature]
    contents = stack.last.body["request"]["contents"]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "weather", "response": {"result": "sunny"}}}]
    assert [tokens(r) for r in stack.rows(key_id, 2)] == [(60, 2, 0, 0), (29, 1816, 0, 1801)]


def test_anthropic_streamed_tool_turns_carry_the_gemini_thought_signature(stack: Stack) -> None:
    key, _ = stack.key("anthropic-signature")
    signature = "CiQB-antigravity-gemini-call"
    stack.fake.reply_stream(
        [
            candidate({"text": "Look it up.", "thought": True}, promptTokenCount=30, thoughtsTokenCount=9),
            candidate(
                {**PARIS, "thoughtSignature": signature},
                finish="STOP",
                promptTokenCount=30,
                candidatesTokenCount=6,
                thoughtsTokenCount=9,
            ),
        ]
    )
    client = stack.anthropic(key)
    question = {"role": "user", "content": "Weather in Paris?"}
    _, first = message_stream(
        client,
        model="pro",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[question],
        tools=[WEATHER_TOOL_ANTHROPIC],
    )
    content = blocks(first)
    assert [b["type"] for b in content] == ["thinking", "tool_use"]
    assert first.usage.output_tokens == 15

    stack.fake.reply_response(candidate({"text": "Mild."}, finish="STOP", promptTokenCount=50, candidatesTokenCount=2))
    message(
        client,
        model="pro",
        max_tokens=4096,
        tools=[WEATHER_TOOL_ANTHROPIC],
        messages=[
            question,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": content[1]["id"], "content": "18C"}]},
        ],
    )
    assert stack.signatures_sent() == [signature]


# -- Claude through Antigravity --------------------------------------------------------------------------------
def test_anthropic_claude_thinking_tool_turns_round_trip(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-claude")
    stack.fake.reply_sse(sse_frames_from_fixture(fixture("antigravity/stream_claude_thinking_tool.sse")))
    client = stack.anthropic(key)
    question = {"role": "user", "content": "Weather in Paris?"}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    events, first = message_stream(
        client, model="claude", max_tokens=1024, thinking=thinking, messages=[question], tools=[WEATHER_TOOL_ANTHROPIC]
    )
    content = blocks(first)
    assert content[0] == {"type": "thinking", "thinking": CLAUDE_THINKING, "signature": CLAUDE_SIGNATURE}
    assert (content[1]["type"], content[1]["id"], content[1]["name"], content[1]["input"]) == (
        "tool_use",
        CLAUDE_CALL_ID,
        "get_weather",
        {"city": "Paris"},
    )
    assert first.stop_reason == "tool_use"  # finishReason OTHER with a call
    assert "signature" in events
    assert (first.usage.input_tokens, first.usage.output_tokens) == (410, 52)

    sent = stack.last
    assert sent.body["model"] == CLAUDE
    assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    request = sent.body["request"]
    assert request["toolConfig"] == {"functionCallingConfig": {"mode": "VALIDATED"}}
    assert request["generationConfig"]["thinkingConfig"] == {"include_thoughts": True, "thinking_budget": 2048}
    assert request["generationConfig"]["maxOutputTokens"] > 2048

    stack.fake.reply_stream(
        [candidate({"text": "18C in Paris."}, finish="STOP", promptTokenCount=480, candidatesTokenCount=7)]
    )
    _, second = message_stream(
        client,
        model="claude",
        max_tokens=1024,
        thinking=thinking,
        tools=[WEATHER_TOOL_ANTHROPIC],
        messages=[
            question,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": CLAUDE_CALL_ID, "content": "18C"}]},
        ],
    )
    assert blocks(second) == [{"type": "text", "text": "18C in Paris."}]
    contents = stack.last.body["request"]["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {"text": CLAUDE_THINKING, "thought": True, "thoughtSignature": CLAUDE_SIGNATURE},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": CLAUDE_CALL_ID}},
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "18C"}, "id": CLAUDE_CALL_ID}}],
    }
    # A signed thinking block closes the loop: thinking stays on.
    assert stack.last.body["request"]["generationConfig"]["thinkingConfig"]["thinking_budget"] == 2048
    assert [tokens(r) for r in stack.rows(key_id, 2)] == [(480, 7, 0, 0), (410, 52, 0, 0)]


def test_openai_client_sees_claude_thinking_as_reasoning_content(stack: Stack) -> None:
    key, key_id = stack.key("openai-claude")
    stack.fake.reply_sse(sse_frames_from_fixture(fixture("antigravity/stream_claude_thinking_tool.sse")))
    chunks = chat_stream(
        stack.openai(key),
        model="claude",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
        reasoning_effort="medium",
    )
    assert stream_text(chunks, "reasoning_content") == CLAUDE_THINKING
    [call] = stream_tool_calls(chunks).values()
    assert (call["id"], call["name"], orjson.loads(call["arguments"])) == (
        CLAUDE_CALL_ID,
        "get_weather",
        {"city": "Paris"},
    )
    assert finish_reasons(chunks) == ["tool_calls"]
    config = stack.last.body["request"]["generationConfig"]["thinkingConfig"]
    assert config == {"include_thoughts": True, "thinking_budget": 8192}  # docs/protocols/antigravity.md §5.1: medium
    [row] = stack.rows(key_id)
    assert tokens(row) == (410, 52, 0, 0)


# -- thinking (Gemini model) -----------------------------------------------------------------------------------
def test_openai_streamed_gemini_thinking(stack: Stack) -> None:
    key, key_id = stack.key("openai-thinking")
    stack.fake.reply_stream(gemini_chunks("gemini/stream_thought_summaries.sse"))
    chunks = chat_stream(
        stack.openai(key),
        model="pro",
        messages=[{"role": "user", "content": "Capital of France?"}],
        reasoning_effort="low",
    )
    assert stream_text(chunks, "reasoning_content").startswith("**Planning the answer**")
    assert stream_text(chunks) == "The capital of France is Paris."
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 148
    config = stack.last.body["request"]["generationConfig"]["thinkingConfig"]
    assert config == {"includeThoughts": True, "thinkingLevel": "LOW"}  # Gemini 3: a level, not a budget
    [row] = stack.rows(key_id)
    assert tokens(row) == (12, 156, 0, 148)


def test_anthropic_non_streamed_gemini_thinking(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-thinking")
    stack.fake.reply_response(
        candidate(
            {"text": "Think first.", "thought": True},
            {"text": "Paris."},
            finish="STOP",
            promptTokenCount=12,
            candidatesTokenCount=2,
            thoughtsTokenCount=30,
        )
    )
    answer = message(
        stack.anthropic(key),
        model="pro",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "Capital of France?"}],
    )
    assert [(b["type"], b.get("thinking") or b.get("text")) for b in blocks(answer)] == [
        ("thinking", "Think first."),
        ("text", "Paris."),
    ]
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (12, 32)
    [row] = stack.rows(key_id)
    assert tokens(row) == (12, 32, 0, 30)


# -- access-token refresh in the middle of traffic -------------------------------------------------------------
def burst(stack: Stack, key: str, count: int) -> list[str]:
    client = stack.openai(key)

    def one(n: int) -> str:
        answer = chat(client, model="pro", messages=[{"role": "user", "content": f"burst {n}"}])
        return str(answer.choices[0].message.content)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_access_token_expiring_during_traffic_is_refreshed_once(tmp_path: Path) -> None:
    # A 4-second access token: apipod refreshes short-lived tokens at half-life, about 2 s after minting.
    fake = FakeAntigravity({REFRESH_A: "proj-a"}, expires_in=4)
    fake.token_delay = 0.3  # slow: the burst piles up on the refresh
    with serve(fake) as url, gateway_for(tmp_path, url, [REFRESH_A]) as gateway:
        stack = Stack(fake, gateway)
        key, key_id = stack.key("refresh")
        assert burst(stack, key, 8) == ["Hello from fake Antigravity."] * 8
        assert fake.refreshes == 1
        minted = time.monotonic()
        time.sleep(2.3)
        assert burst(stack, key, 8) == ["Hello from fake Antigravity."] * 8
        assert time.monotonic() - minted < 3.8, "too slow: the second token may be due already"
        assert fake.refreshes == 2  # eight requests found the token due: one refresh between them
        assert [r.headers["authorization"] for r in stack.generations()] == ["Bearer ya29.fake-1"] * 8 + [
            "Bearer ya29.fake-2"
        ] * 8
        assert len(fake.calls("loadCodeAssist")) == 1
        assert len(stack.rows(key_id, 16)) == 16


def test_access_token_refused_during_traffic_is_refreshed_once(tmp_path: Path) -> None:
    fake = FakeAntigravity({REFRESH_A: "proj-a"})
    fake.token_delay = 0.3
    with serve(fake) as url, gateway_for(tmp_path, url, [REFRESH_A]) as gateway:
        stack = Stack(fake, gateway)
        key, key_id = stack.key("revoked")
        assert burst(stack, key, 4) == ["Hello from fake Antigravity."] * 4
        assert fake.refreshes == 1
        fake.revoke_access_tokens()  # Cloud Code now answers 401 UNAUTHENTICATED to the cached token
        assert burst(stack, key, 8) == ["Hello from fake Antigravity."] * 8
        assert fake.refreshes == 2
        served = [r for r in stack.generations() if r.headers["authorization"] == "Bearer ya29.fake-2"]
        assert len(served) == 8
        rows = stack.rows(key_id, 12)
        assert all(r["status"] == "success" and r["upstream_provider"] == "ag/#0" for r in rows)


# -- 429 and account rotation ----------------------------------------------------------------------------------
@pytest.fixture
def two_accounts(tmp_path: Path) -> Iterator[Stack]:
    fake = FakeAntigravity({REFRESH_A: "proj-a", REFRESH_B: "proj-b"})
    with serve(fake) as url, gateway_for(tmp_path, url, [REFRESH_A, REFRESH_B], projects=["proj-a", "proj-b"]) as gw:
        yield Stack(fake, gw)


def projects_used(stack: Stack, since: int = 0) -> list[str]:
    return [r.body["project"] for r in stack.generations()[since:]]


def test_429_rotates_to_the_second_account_which_serves_while_the_first_rests(two_accounts: Stack) -> None:
    stack = two_accounts
    key, key_id = stack.key("rotation")
    client = stack.openai(key)
    stack.fake.replay(fixture("antigravity/error_429_retry_info.json"))  # RetryInfo: 3.957525076s
    started = time.monotonic()
    answer = chat(client, model="pro", messages=[{"role": "user", "content": "first"}])
    assert answer.choices[0].message.content == "Hello from fake Antigravity."
    assert projects_used(stack) == ["proj-a", "proj-b"]
    assert stack.fake.calls("loadCodeAssist") == []  # configured projects skip discovery
    [row] = stack.rows(key_id)
    assert (row["status"], row["upstream_provider"]) == ("success", "ag/#1")
    assert [(a["account"], a["outcome"]) for a in row["attempts"]] == [
        ("ag/#0", "failed: UpstreamRateLimitedError"),
        ("ag/#1", "served"),
    ]

    for n in range(3):
        chat(client, model="pro", messages=[{"role": "user", "content": f"resting {n}"}])
    assert time.monotonic() - started < 3.9, "too slow to observe the rest"
    assert projects_used(stack, 2) == ["proj-b"] * 3

    time.sleep(max(0.0, started + 4.2 - time.monotonic()))
    for n in range(2):
        chat(client, model="pro", messages=[{"role": "user", "content": f"rested {n}"}])
    assert projects_used(stack, 5) == ["proj-a", "proj-b"]  # the first account is back in the rotation


def test_exhausted_quota_rests_the_account_while_the_other_serves_streaming(two_accounts: Stack) -> None:
    stack = two_accounts
    key, key_id = stack.key("exhausted")
    client = stack.openai(key)
    body = {
        "error": {
            "code": 429,
            "message": "You have exhausted your quota on this model.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "QUOTA_EXHAUSTED",
                    "domain": "cloudcode-pa.googleapis.com",
                    "metadata": {"model": FLASH, "quotaResetDelay": "2h0m0s"},
                }
            ],
        }
    }
    stack.fake.reply_json(body, status=429)
    chunks = chat_stream(client, model="pro", messages=[{"role": "user", "content": "first"}])
    assert stream_text(chunks) == "Hello from fake Antigravity."
    assert projects_used(stack) == ["proj-a", "proj-b"]
    for n in range(4):
        chat(client, model="pro", messages=[{"role": "user", "content": f"more {n}"}])
    assert projects_used(stack, 2) == ["proj-b"] * 4
    assert stack.rows(key_id, 5)[-1]["attempts"][0] == {
        "model": "flash",
        "account": "ag/#0",
        "outcome": "failed: UpstreamRateLimitedError",
    }
