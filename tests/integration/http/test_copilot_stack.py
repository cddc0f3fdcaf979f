"""Full stack over real sockets: the official openai and anthropic SDKs -> ``apipod serve`` -> GitHub Copilot
(tests/fakes/fake_copilot.py: GitHub's token exchange plus Copilot's API), fixtures replayed byte for byte.

``gpt-4.1`` is served on ``/chat/completions``; ``claude-sonnet-4.5`` lists ``/v1/messages`` in the model list
and is served natively there. The token-refresh and rotation tests start their own gateway: a cached Copilot
token and an account's rest are process state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.fake_copilot import GITHUB_TOKEN, TOKEN_PATH, FakeCopilot
from tests.fakes.scripted import Recorded
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

GITHUB_TOKEN_B = "ghu_fakeGithubToken0002"
ALIASES = 'aliases = [{ name = "claude", routes = [{ model = "sonnet", weight = 1 }] }]'
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "GetWeatherArgs",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "units": {"type": "string"}},
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_stock_price",
            "parameters": {
                "type": "object",
                "properties": {"ticker": {"type": "string"}, "exchange": {"type": "string"}},
            },
        },
    },
]
TOOLS_ANTHROPIC = [
    {"name": t["function"]["name"], "input_schema": t["function"]["parameters"]}  # type: ignore[index]
    for t in TOOLS
]
EDINBURGH = {"city": "Edinburgh", "country": "GB", "units": "c"}
AAPL = {"ticker": "AAPL", "exchange": "NASDAQ"}
# anthropic/stream_thinking_then_text.sse, the fake's default answer on /v1/messages
THINKING = "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185"
THINKING_TEXT = "925 ÷ 5 = 185"


def copilot_provider(url: str, accounts: list[str]) -> str:
    return provider("copilot", "copilot", url, accounts=accounts, extra=f'token_url = "{url}{TOKEN_PATH}"\n')


def copilot_catalog(url: str, accounts: list[str]) -> str:
    return catalog(
        copilot_provider(url, accounts),
        models=[model("gpt", "copilot", "gpt-4.1"), model("sonnet", "copilot", "claude-sonnet-4-5")],
        plans=[plan("pro", {"gpt": 1}, extra=ALIASES)],
    )


class Stack(ProviderStack[FakeCopilot]):
    def chats(self) -> list[Recorded]:
        return self.fake.chat_requests()

    def github_token_of(self, request: Recorded) -> str:
        """The GitHub token whose Copilot token authorised ``request`` (exchanges mint in request order)."""
        minted = dict(zip(self.fake.issued, self.fake.exchanges, strict=True))
        return minted[request.headers["authorization"].removeprefix("Bearer ")].headers["authorization"].split()[1]


def tokens(row: dict[str, Any]) -> tuple[int, int, int, int]:
    return row["input_tokens"], row["output_tokens"], row["cached_input_tokens"], row["reasoning_tokens"]


def load(relative: str) -> Any:
    return orjson.loads(fixture(relative).read_bytes())


def chunk_frames(*deltas: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None) -> list[bytes]:
    """Copilot-style SSE: one chunk per delta, then the finish chunk carrying the usage, then ``[DONE]``."""
    head = {"created": 1732790000, "id": "chatcmpl-fake", "model": "gpt-4.1-2025-04-14"}
    frames = [orjson.dumps({**head, "choices": [{"index": 0, "delta": d}]}) for d in deltas]
    last: dict[str, Any] = {**head, "choices": [{"index": 0, "finish_reason": finish, "delta": {"content": None}}]}
    if usage is not None:
        last["usage"] = usage
    frames.append(orjson.dumps(last))
    return [b"data: " + f + b"\n\n" for f in frames] + [b"data: [DONE]\n\n"]


def gateway_for(tmp: Path, url: str, accounts: list[str]) -> ApipodProcess:
    """Not started: use it as a context manager."""
    return ApipodProcess(catalog=copilot_catalog(url, accounts), tmp=tmp)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    fake = FakeCopilot()
    with serve(fake) as url:
        gateway = gateway_for(tmp_path_factory.mktemp("copilot"), url, [GITHUB_TOKEN]).start()
        try:
            stack = Stack(fake, gateway)
            # Warm up: the token exchange and the model list (which routes claude to /v1/messages) happen
            # now, so the tests' scripted answers go to the chat calls they are meant for.
            chat(stack.openai(stack.key("warm-up")[0]), model="pro", messages=[{"role": "user", "content": "hi"}])
            assert [r.path for r in fake.requests] == [TOKEN_PATH, "/models", "/chat/completions"]
            yield stack
        finally:
            gateway.stop()


@pytest.fixture(autouse=True)
def _clean_script(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").fake.replies.clear()


# -- text over /chat/completions -------------------------------------------------------------------------------
def test_openai_text_non_streaming(stack: Stack) -> None:
    key, key_id = stack.key("openai-text")
    answer = chat(stack.openai(key), model="pro", messages=[{"role": "user", "content": "Say hello"}])
    assert answer.model == "pro"
    assert answer.choices[0].message.content == "Hello!"
    assert answer.choices[0].finish_reason == "stop"
    assert "padding" not in (answer.choices[0].message.model_extra or {})  # Copilot's stray key is not passed on
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (9, 2)

    sent = stack.chats()[-1]
    assert sent.path == "/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {stack.fake.issued[0]}"
    assert sent.headers["editor-version"] == "vscode/1.104.3"
    assert sent.headers["copilot-integration-id"] == "vscode-chat"
    assert sent.headers["x-initiator"] == "user"
    assert (sent.body["model"], sent.body["messages"]) == ("gpt-4.1", [{"role": "user", "content": "Say hello"}])
    assert len(stack.fake.exchanges) == 1  # the cached Copilot token serves every request
    [row] = stack.rows(key_id)
    assert (row["status"], row["routed_model"], row["upstream_provider"]) == ("success", "gpt", "copilot/#0")
    assert tokens(row) == (9, 2, 0, 0)


def test_openai_text_streaming(stack: Stack) -> None:
    """Copilot puts the usage on the finish chunk (stream_usage_in_finish_chunk.sse)."""
    key, key_id = stack.key("openai-stream")
    chunks = chat_stream(stack.openai(key), model="pro", messages=[{"role": "user", "content": "Say hello"}])
    assert stream_text(chunks) == "Hello!"
    assert finish_reasons(chunks) == ["stop"]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 2)
    sent = stack.chats()[-1]
    assert (sent.body["stream"], sent.body["stream_options"]) == (True, {"include_usage": True})
    [row] = stack.rows(key_id)
    assert tokens(row) == (9, 2, 0, 0)


def test_anthropic_text_over_chat_completions(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-text")
    client = stack.anthropic(key)
    answer = message(
        client, model="pro", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Hi"}]
    )
    assert blocks(answer) == [{"type": "text", "text": "Hello!"}]
    assert (answer.stop_reason, answer.usage.input_tokens, answer.usage.output_tokens) == ("end_turn", 9, 2)
    sent = stack.chats()[-1]
    assert sent.path == "/chat/completions"
    assert sent.body["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert sent.body["max_completion_tokens"] == 64

    events, final = message_stream(client, model="pro", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    assert blocks(final) == [{"type": "text", "text": "Hello!"}]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 2)
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert [tokens(r) for r in stack.rows(key_id, 2)] == [(9, 2, 0, 0), (9, 2, 0, 0)]


def test_usage_with_cached_and_reasoning_tokens_is_recorded_exactly(stack: Stack) -> None:
    key, key_id = stack.key("usage")
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 80,
        "total_tokens": 1280,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    stack.fake.reply_sse(
        chunk_frames(
            {"role": "assistant", "content": ""},
            {"reasoning_text": "Compare both."},
            {"content": "Equal."},
            usage=usage,
        )
    )
    chunks = chat_stream(stack.openai(key), model="pro", messages=[{"role": "user", "content": "Compare"}])
    assert stream_text(chunks, "reasoning_content") == "Compare both."  # Copilot's reasoning_text
    assert stream_text(chunks) == "Equal."
    got = chunks[-1].usage
    assert (got.prompt_tokens, got.completion_tokens) == (1200, 80)
    assert got.prompt_tokens_details.cached_tokens == 1024
    assert got.completion_tokens_details.reasoning_tokens == 64
    [row] = stack.rows(key_id)
    assert tokens(row) == (1200, 80, 1024, 64)
    assert row["token_count"] == 1280


# -- thinking --------------------------------------------------------------------------------------------------
def test_openai_non_streamed_reasoning_text(stack: Stack) -> None:
    key, key_id = stack.key("openai-thinking")
    body = {
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {"role": "assistant", "content": "Paris.", "reasoning_text": "Capital question."},
            }
        ],
        "created": 1732790000,
        "id": "chatcmpl-x",
        "model": "gpt-4.1-2025-04-14",
        "usage": {"prompt_tokens": 20, "completion_tokens": 9, "completion_tokens_details": {"reasoning_tokens": 5}},
    }
    stack.fake.reply_json(body)
    answer = chat(stack.openai(key), model="pro", messages=[{"role": "user", "content": "Capital of France?"}])
    assert answer.choices[0].message.reasoning_content == "Capital question."
    assert answer.choices[0].message.content == "Paris."
    [row] = stack.rows(key_id)
    assert tokens(row) == (20, 9, 0, 5)


def test_anthropic_streamed_thinking_over_native_messages(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-native-thinking")
    thinking = {"type": "enabled", "budget_tokens": 2048}
    events, final = message_stream(
        stack.anthropic(key),
        model="claude",
        max_tokens=4096,
        thinking=thinking,
        messages=[{"role": "user", "content": "Divide the previous result by 5."}],
    )
    signature = load_signature()
    assert blocks(final) == [
        {"type": "thinking", "thinking": THINKING, "signature": signature},
        {"type": "text", "text": THINKING_TEXT},
    ]
    assert "signature" in events
    assert (final.usage.input_tokens, final.usage.output_tokens) == (69, 53)

    sent = stack.chats()[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["authorization"] == f"Bearer {stack.fake.issued[0]}"
    assert sent.body["model"] == "claude-sonnet-4.5"  # Copilot spells Claude versions with a dot
    assert sent.body["thinking"] == thinking  # same dialect: passed through
    [row] = stack.rows(key_id)
    assert tokens(row) == (69, 53, 0, 0)


def test_openai_streamed_thinking_over_native_messages(stack: Stack) -> None:
    key, key_id = stack.key("openai-native-thinking")
    chunks = chat_stream(
        stack.openai(key),
        model="claude",
        messages=[{"role": "user", "content": "Divide the previous result by 5."}],
        reasoning_effort="low",
    )
    assert stream_text(chunks, "reasoning_content") == THINKING
    assert stream_text(chunks) == THINKING_TEXT
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (69, 53)
    sent = stack.chats()[-1]
    assert sent.path == "/v1/messages"
    assert sent.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}  # docs/protocols/translation.md §5.2
    assert sent.body["max_tokens"] > 2048
    [row] = stack.rows(key_id)
    assert tokens(row) == (69, 53, 0, 0)


def load_signature() -> str:
    for line in fixture("anthropic/stream_thinking_then_text.sse").read_text().splitlines():
        if "signature_delta" in line:
            return str(orjson.loads(line.removeprefix("data: "))["delta"]["signature"])
    raise AssertionError("no signature in the fixture")


# -- tools -----------------------------------------------------------------------------------------------------
def test_openai_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.key("openai-stream-tools")
    stack.fake.replay(fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse"))
    chunks = chat_stream(
        stack.openai(key), model="pro", messages=[{"role": "user", "content": "Weather and AAPL?"}], tools=TOOLS
    )
    calls = stream_tool_calls(chunks)
    assert [(calls[i]["id"], calls[i]["name"], orjson.loads(calls[i]["arguments"])) for i in (0, 1)] == [
        ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", EDINBURGH),
        ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", AAPL),
    ]
    assert finish_reasons(chunks) == ["tool_calls"]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (149, 60)
    assert stack.chats()[-1].body["tools"] == TOOLS
    [row] = stack.rows(key_id)
    assert tokens(row) == (149, 60, 0, 0)


def test_openai_non_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.key("openai-tools")
    stack.fake.replay(fixture("openai/chat_completion_parallel_tool_calls.json"))
    answer = chat(stack.openai(key), model="pro", messages=[{"role": "user", "content": "Both?"}], tools=TOOLS)
    assert answer.choices[0].finish_reason == "tool_calls"
    assert [
        (c.id, c.function.name, orjson.loads(c.function.arguments)) for c in answer.choices[0].message.tool_calls
    ] == [
        ("call_fdNz3vOBKYgOIpMdWotB9MjY", "GetWeatherArgs", EDINBURGH),
        ("call_h1DWI1POMJLb0KwIyQHWXD4p", "get_stock_price", AAPL),
    ]
    [row] = stack.rows(key_id)
    assert tokens(row) == (149, 60, 0, 0)


def test_anthropic_streamed_parallel_tool_calls_over_chat_completions(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-stream-tools")
    stack.fake.replay(fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse"))
    events, final = message_stream(
        stack.anthropic(key),
        model="pro",
        max_tokens=512,
        messages=[{"role": "user", "content": "Weather and AAPL?"}],
        tools=TOOLS_ANTHROPIC,
    )
    assert [(b["type"], b["id"], b["name"], b["input"]) for b in blocks(final)] == [
        ("tool_use", "call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", EDINBURGH),
        ("tool_use", "call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", AAPL),
    ]
    assert final.stop_reason == "tool_use"
    assert events.count("input_json") >= 2
    assert (final.usage.input_tokens, final.usage.output_tokens) == (149, 60)
    sent = stack.chats()[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["GetWeatherArgs", "get_stock_price"]
    [row] = stack.rows(key_id)
    assert tokens(row) == (149, 60, 0, 0)


def test_anthropic_non_streamed_parallel_tool_calls_over_chat_completions(stack: Stack) -> None:
    key, _ = stack.key("anthropic-tools")
    stack.fake.replay(fixture("openai/chat_completion_parallel_tool_calls.json"))
    answer = message(
        stack.anthropic(key),
        model="pro",
        max_tokens=512,
        messages=[{"role": "user", "content": "Both?"}],
        tools=TOOLS_ANTHROPIC,
    )
    assert answer.stop_reason == "tool_use"
    assert [(b["type"], b["name"], b["input"]) for b in blocks(answer)] == [
        ("tool_use", "GetWeatherArgs", EDINBURGH),
        ("tool_use", "get_stock_price", AAPL),
    ]


# -- multi-turn tool conversations -----------------------------------------------------------------------------
def test_openai_tool_conversation_over_chat_completions(stack: Stack) -> None:
    key, _ = stack.key("openai-tool-turns")
    client = stack.openai(key)
    stack.fake.replay(fixture("openai/chat_completion_parallel_tool_calls.json"))
    question = {"role": "user", "content": "Both?"}
    first = chat(client, model="pro", messages=[question], tools=TOOLS)
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    results = [
        {"role": "tool", "tool_call_id": c.id, "content": f"result {n}"}
        for n, c in enumerate(first.choices[0].message.tool_calls)
    ]
    second = chat(client, model="pro", messages=[question, assistant, *results], tools=TOOLS)
    assert second.choices[0].message.content == "Hello!"
    sent = stack.chats()[-1]
    assert sent.headers["x-initiator"] == "agent"  # a tool-loop continuation (docs/protocols/copilot.md §5.3)
    messages = sent.body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == [
        "call_fdNz3vOBKYgOIpMdWotB9MjY",
        "call_h1DWI1POMJLb0KwIyQHWXD4p",
    ]
    assert isinstance(messages[1].get("content"), str | None)  # Copilot accepts only a string
    assert [(m["tool_call_id"], m["content"]) for m in messages[2:]] == [
        ("call_fdNz3vOBKYgOIpMdWotB9MjY", "result 0"),
        ("call_h1DWI1POMJLb0KwIyQHWXD4p", "result 1"),
    ]


def test_anthropic_tool_turns_keep_the_thinking_signature_over_native_messages(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-native-tools")
    client = stack.anthropic(key)
    fixture_body = load("anthropic/message_thinking_then_tool_use.json")
    stack.fake.reply_json(fixture_body)
    question = {"role": "user", "content": "Check the sandbox."}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    tools = [{"name": "checkSandboxErrors", "input_schema": {"type": "object", "properties": {}}}]
    first = message(client, model="claude", max_tokens=4096, thinking=thinking, tools=tools, messages=[question])
    content = blocks(first)
    signature = fixture_body["content"][0]["signature"]
    assert [b["type"] for b in content] == ["thinking", "tool_use"]
    assert content[0]["signature"] == signature
    assert (content[1]["id"], content[1]["name"]) == ("toolu_017R7ACrx7NF7sLDDtvdQ1u9", "checkSandboxErrors")
    assert first.stop_reason == "tool_use"

    second = message(
        client,
        model="claude",
        max_tokens=4096,
        thinking=thinking,
        tools=tools,
        messages=[
            question,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": content[1]["id"], "content": "none"}]},
        ],
    )
    assert blocks(second) == [{"type": "text", "text": "Hello!"}]  # the fake's default message
    sent = stack.chats()[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-initiator"] == "agent"
    echoed = sent.body["messages"][1]["content"]
    assert echoed[0] == {"type": "thinking", "thinking": fixture_body["content"][0]["thinking"], "signature": signature}
    assert echoed[1]["id"] == "toolu_017R7ACrx7NF7sLDDtvdQ1u9"
    rows = stack.rows(key_id, 2)
    assert tokens(rows[1]) == (599, 59, 0, 18)  # output_tokens_details.thinking_tokens
    assert tokens(rows[0]) == (10, 5, 0, 0)


def test_openai_tool_turns_send_reasoning_opaque_back(stack: Stack) -> None:
    """docs/protocols/copilot.md §7, docs/protocols/translation.md §5.4.5: Copilot's ``reasoning_opaque`` must come back
    on the next assistant message unchanged. The OpenAI client can only echo what it was given."""
    key, _ = stack.key("openai-opaque")
    client = stack.openai(key)
    opaque = "gAAAAABopaque-state-0001"
    call = {"id": "call_opaque1", "type": "function", "function": {"name": "get_stock_price", "arguments": "{}"}}
    stack.fake.reply_json(
        {
            "choices": [
                {
                    "finish_reason": "tool_calls",
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "reasoning_text": "Need a price.",
                        "reasoning_opaque": opaque,
                        "tool_calls": [call],
                    },
                }
            ],
            "created": 1732790000,
            "id": "chatcmpl-opaque",
            "model": "gpt-4.1-2025-04-14",
            "usage": {"prompt_tokens": 30, "completion_tokens": 12},
        }
    )
    question = {"role": "user", "content": "AAPL?"}
    first = chat(client, model="pro", messages=[question], tools=TOOLS)
    assert first.choices[0].message.reasoning_content == "Need a price."
    assistant = first.choices[0].message.model_dump(exclude_none=True)
    chat(
        client,
        model="pro",
        messages=[question, assistant, {"role": "tool", "tool_call_id": "call_opaque1", "content": "230"}],
        tools=TOOLS,
    )
    echoed = stack.chats()[-1].body["messages"][1]
    assert echoed.get("reasoning_opaque") == opaque


def test_anthropic_tool_turns_send_reasoning_opaque_back(stack: Stack) -> None:
    """The same over the Anthropic dialect: the opaque state reaches the client as the thinking block's
    signature, and the echoed block must become ``reasoning_opaque`` again toward Copilot."""
    key, _ = stack.key("anthropic-opaque")
    client = stack.anthropic(key)
    opaque = "gAAAAABopaque-state-0002"
    call = {"id": "call_opaque2", "type": "function", "function": {"name": "get_stock_price", "arguments": "{}"}}
    stack.fake.reply_json(
        {
            "choices": [
                {
                    "finish_reason": "tool_calls",
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "reasoning_text": "Need a price.",
                        "reasoning_opaque": opaque,
                        "tool_calls": [call],
                    },
                }
            ],
            "created": 1732790000,
            "id": "chatcmpl-opaque",
            "model": "gpt-4.1-2025-04-14",
            "usage": {"prompt_tokens": 30, "completion_tokens": 12},
        }
    )
    question = {"role": "user", "content": "AAPL?"}
    first = message(client, model="pro", max_tokens=512, messages=[question], tools=TOOLS_ANTHROPIC)
    content = blocks(first)
    assert content[0] == {"type": "thinking", "thinking": "Need a price.", "signature": opaque}
    assert (content[1]["type"], content[1]["id"]) == ("tool_use", "call_opaque2")
    message(
        client,
        model="pro",
        max_tokens=512,
        tools=TOOLS_ANTHROPIC,
        messages=[
            question,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_opaque2", "content": "230"}]},
        ],
    )
    echoed = stack.chats()[-1].body["messages"][1]
    assert echoed["tool_calls"][0]["id"] == "call_opaque2"
    assert echoed.get("reasoning_opaque") == opaque


# -- token refresh in the middle of traffic --------------------------------------------------------------------
def burst(stack: Stack, key: str, count: int) -> list[str]:
    """``count`` concurrent requests; their answers' texts."""
    client = stack.openai(key)

    def one(n: int) -> str:
        return str(
            chat(client, model="pro", messages=[{"role": "user", "content": f"burst {n}"}]).choices[0].message.content
        )

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_copilot_token_expiring_during_traffic_is_exchanged_once(tmp_path: Path) -> None:
    # A 4-second token: apipod refreshes short-lived tokens at half-life, so about 2 s after minting.
    fake = FakeCopilot(lifetime=4, refresh_in=None, exchange_delay=0.3)  # slow: the burst piles up on it
    with serve(fake) as url, gateway_for(tmp_path, url, [GITHUB_TOKEN]) as gateway:
        stack = Stack(fake, gateway)
        key, key_id = stack.key("refresh")
        assert burst(stack, key, 8) == ["Hello!"] * 8
        assert len(fake.exchanges) == 1
        minted = time.monotonic()
        time.sleep(2.3)
        assert burst(stack, key, 8) == ["Hello!"] * 8
        assert time.monotonic() - minted < 3.5, "too slow: the second token may be due already"
        assert len(fake.exchanges) == 2  # eight requests found the token due: one exchange between them
        chats = [r for r in stack.chats() if r.path == "/chat/completions"]
        assert [r.headers["authorization"] for r in chats] == [f"Bearer {fake.issued[0]}"] * 8 + [
            f"Bearer {fake.issued[1]}"
        ] * 8
        assert all(r.headers["authorization"] == f"token {GITHUB_TOKEN}" for r in fake.exchanges)
        assert len(stack.rows(key_id, 16)) == 16


def test_copilot_token_refused_during_traffic_is_exchanged_once(tmp_path: Path) -> None:
    fake = FakeCopilot(exchange_delay=0.3)  # slow: the burst piles up on it
    with serve(fake) as url, gateway_for(tmp_path, url, [GITHUB_TOKEN]) as gateway:
        stack = Stack(fake, gateway)
        key, key_id = stack.key("revoked")
        assert burst(stack, key, 4) == ["Hello!"] * 4
        assert len(fake.exchanges) == 1
        fake.expire_tokens()  # Copilot now answers 401 "unauthorized: token expired" to the cached token
        assert burst(stack, key, 8) == ["Hello!"] * 8
        assert len(fake.exchanges) == 2
        served = [r for r in stack.chats() if r.headers["authorization"] == f"Bearer {fake.issued[1]}"]
        assert len(served) == 8
        rows = stack.rows(key_id, 12)
        assert all(r["status"] == "success" and r["upstream_provider"] == "copilot/#0" for r in rows)


# -- 429 and account rotation ----------------------------------------------------------------------------------
def test_429_rotates_to_the_second_account_which_serves_while_the_first_rests(tmp_path: Path) -> None:
    fake = FakeCopilot(github_tokens=[GITHUB_TOKEN, GITHUB_TOKEN_B])
    with serve(fake) as url, gateway_for(tmp_path, url, [GITHUB_TOKEN, GITHUB_TOKEN_B]) as gateway:
        stack = Stack(fake, gateway)
        key, key_id = stack.key("rotation")
        client = stack.openai(key)
        for n in range(2):  # warm up both accounts: token exchange and model list each
            chat(client, model="pro", messages=[{"role": "user", "content": f"warm {n}"}])
        assert [stack.github_token_of(r) for r in stack.chats()] == [GITHUB_TOKEN, GITHUB_TOKEN_B]

        body = {"error": {"message": "Sorry, you've hit a rate limit.", "code": "rate_limited", "type": "error"}}
        fake.reply_json(body, status=429, headers={"retry-after": "2"})
        started = time.monotonic()
        answer = chat(client, model="pro", messages=[{"role": "user", "content": "limited"}])
        assert answer.choices[0].message.content == "Hello!"
        assert [stack.github_token_of(r) for r in stack.chats()[2:]] == [GITHUB_TOKEN, GITHUB_TOKEN_B]
        row = stack.rows(key_id, 3)[0]
        assert (row["status"], row["upstream_provider"]) == ("success", "copilot/#1")
        assert [(a["account"], a["outcome"]) for a in row["attempts"]] == [
            ("copilot/#0", "failed: UpstreamRateLimitedError"),
            ("copilot/#1", "served"),
        ]

        for n in range(2):
            chat(client, model="pro", messages=[{"role": "user", "content": f"resting {n}"}])
        assert time.monotonic() - started < 2.0, "too slow to observe the rest"
        assert [stack.github_token_of(r) for r in stack.chats()[4:]] == [GITHUB_TOKEN_B] * 2

        time.sleep(max(0.0, started + 2.2 - time.monotonic()))  # retry-after: 2
        for n in range(2):
            chat(client, model="pro", messages=[{"role": "user", "content": f"rested {n}"}])
        assert [stack.github_token_of(r) for r in stack.chats()[6:]] == [GITHUB_TOKEN, GITHUB_TOKEN_B]
        assert len(fake.exchanges) == 2
