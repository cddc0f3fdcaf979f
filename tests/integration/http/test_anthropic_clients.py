"""Anthropic SDK -> apipod (a real process) -> fake Anthropic-compatible upstream, over real sockets.

Same dialect: the upstream receives the client's body as sent (only ``model`` and ``stream`` set by apipod)
with its ``anthropic-beta`` header; thinking signatures travel byte for byte both ways; the usage row holds
what the upstream reported (input counted Anthropic-side as input + cache reads + cache writes).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes.fake_anthropic import anthropic_frames
from tests.fixture_path import fixture
from tests.integration.http.core_support import AN_UPSTREAM_MODEL, Stack, start_stack

THINKING_SIGNATURE = (
    "EvQBCkYICxgCKkAxhD4NUKFzudtZ6NzbZdEiBACIScTzqjPViM596iWLZIk4EFKYYBj3B6Ptl3b0dcQv/VeJBNbejNWIWRBn+KPNEgz6HWtKx7p+"
    "QRgKsEoaDGjsiqfht7gTRFYHiyIwD1VSmNqHxv3wy8KEMP+LYb/TC4UH3H97tuoaADARFFcA0phdfxnzKQxFnc9lwY+dKlzUsaKSUAFeu1bDL5ikZJ"
    "1vL0Fkz6JjoFke0L/wOJRIUDUlDUOFJ1tZ3ea7g6LGE/5hwuvWgLwewdcm64d+43l7F57XrOmqNd6flI2K/oPr/4yzNgvi/EhT6Ca17BgB"
)
THINKING_TEXT = "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185"
TOOL_SIGNATURE = orjson.loads(fixture("anthropic/message_thinking_then_tool_use.json").read_bytes())["content"][0][
    "signature"
]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    yield from start_stack(tmp_path_factory.mktemp("anthropic-clients"))


@pytest.fixture(autouse=True)
def _clean(stack: Stack) -> None:
    stack.reset()


def _assert_usage(
    row: dict[str, Any], *, input: int, output: int, cached: int = 0, reasoning: int = 0, requested: str | None = None
) -> None:
    assert row["status"] == "success"
    assert row["routed_model"] == "claude"
    assert row["upstream_provider"].startswith("an/")
    assert (row["input_tokens"], row["output_tokens"]) == (input, output)
    assert (row["cached_input_tokens"], row["reasoning_tokens"]) == (cached, reasoning)
    if requested is not None:
        assert row["requested_model"] == requested


def _message(text: str, *, usage: dict[str, Any], content: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "id": "msg_scripted",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content if content is not None else [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


# -- text ----------------------------------------------------------------------------------------------------


def test_non_streamed_text(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/message_text.json"))
    answer = stack.anthropic(key).messages.create(
        model="claude-opus-4-7", max_tokens=256, messages=[{"role": "user", "content": "Say hello"}]
    )
    assert answer.type == "message"
    assert answer.role == "assistant"
    assert answer.model == "claude-opus-4-7"
    assert [(b.type, getattr(b, "text", None)) for b in answer.content] == [("text", "Hello!")]
    assert answer.stop_reason == "end_turn"
    assert answer.stop_sequence is None
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (10, 5)
    assert (answer.usage.cache_read_input_tokens or 0, answer.usage.cache_creation_input_tokens or 0) == (0, 0)
    sent = stack.an.last
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "sk-test-0"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body == {
        "model": AN_UPSTREAM_MODEL,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hello"}],
        "stream": False,
    }
    _assert_usage(stack.usage_row(key_id), input=10, output=5, requested="claude-opus-4-7")


def test_streamed_text(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_text.sse"))
    with stack.anthropic(key).messages.stream(
        model="claude-3-opus-latest", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["Hello", " there", "!"]
    assert final.model == "claude-3-opus-latest"
    assert [(b.type, getattr(b, "text", None)) for b in final.content] == [("text", "Hello there!")]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 6)
    assert stack.an.last.body["stream"] is True
    _assert_usage(stack.usage_row(key_id), input=11, output=6)


def test_streamed_event_sequence_is_anthropics(stack: Stack) -> None:
    key, _ = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_text.sse"))
    events = list(
        stack.anthropic(key).messages.create(
            model="m", max_tokens=64, messages=[{"role": "user", "content": "Hi"}], stream=True
        )
    )
    kinds = [e.type for e in events]
    assert kinds == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0]
    assert start.type == "message_start"
    assert start.message.model == "m"
    assert start.message.id.startswith("msg_")
    assert start.message.usage.input_tokens == 11


def test_thinking_with_signature_streamed(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_thinking_then_text.sse"))
    with stack.anthropic(key).messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Divide the previous result by 5."}],
    ) as stream:
        thinking_deltas = [
            e.delta.thinking for e in stream if e.type == "content_block_delta" and e.delta.type == "thinking_delta"
        ]
        final = stream.get_final_message()
    assert "".join(thinking_deltas) == THINKING_TEXT
    assert [b.type for b in final.content] == ["thinking", "text"]
    thinking, text = final.content
    assert thinking.type == "thinking" and text.type == "text"
    assert thinking.thinking == THINKING_TEXT
    assert thinking.signature == THINKING_SIGNATURE
    assert text.text == "925 ÷ 5 = 185"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (69, 53)
    assert stack.an.last.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    _assert_usage(stack.usage_row(key_id), input=69, output=53)


def test_thinking_then_tool_use_non_streamed(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/message_thinking_then_tool_use.json"))
    answer = stack.anthropic(key).messages.create(
        model="claude-sonnet-4-6",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[{"name": "checkSandboxErrors", "input_schema": {"type": "object", "properties": {}}}],
        messages=[{"role": "user", "content": "Check the sandbox now."}],
    )
    assert [b.type for b in answer.content] == ["thinking", "tool_use"]
    thinking, tool = answer.content
    assert thinking.type == "thinking" and tool.type == "tool_use"
    assert thinking.thinking == "The user wants me to call checkSandboxErrors immediately."
    assert thinking.signature == TOOL_SIGNATURE
    assert (tool.id, tool.name, tool.input) == ("toolu_017R7ACrx7NF7sLDDtvdQ1u9", "checkSandboxErrors", {})
    assert answer.stop_reason == "tool_use"
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (599, 59)
    _assert_usage(stack.usage_row(key_id), input=599, output=59, reasoning=18)


# -- tools ---------------------------------------------------------------------------------------------------


def test_tool_use_streamed(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/stream_text_then_tool_use.sse"))
    with stack.anthropic(key).messages.stream(
        model="claude-sonnet-4",
        max_tokens=1024,
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
    ) as stream:
        json_pieces = [
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    assert "".join(json_pieces) == '{"location": "Paris"}'
    assert len([p for p in json_pieces if p]) == 4  # the upstream's pieces, not one buffered block
    assert [b.type for b in final.content] == ["text", "tool_use"]
    text, tool = final.content
    assert text.type == "text" and tool.type == "tool_use"
    assert text.text == "I'll check the current weather in Paris for you."
    assert (tool.id, tool.name, tool.input) == ("toolu_01NRLabsLyVHZPKxbKvkfSMn", "get_weather", {"location": "Paris"})
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (377, 65)
    assert stack.an.last.body["tools"] == [WEATHER_TOOL]
    _assert_usage(stack.usage_row(key_id), input=377, output=65)


def test_multi_turn_tool_loop_sends_thinking_back_byte_for_byte(stack: Stack) -> None:
    """Turn 1 answers thinking + tool_use; the client sends those blocks back with the tool result; the
    upstream receives the signature exactly as it issued it."""
    key, key_id = stack.new_key("an-plan")
    client = stack.anthropic(key)
    tools = [{"name": "checkSandboxErrors", "input_schema": {"type": "object", "properties": {}}}]
    first_turn: list[dict[str, Any]] = [{"role": "user", "content": "Check the sandbox now."}]
    stack.an.replay(fixture("anthropic/message_thinking_then_tool_use.json"))
    first = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=tools,  # type: ignore[arg-type]
        messages=first_turn,  # type: ignore[arg-type]
    )
    assistant_blocks = [b.model_dump(exclude_none=True) for b in first.content]
    history = [
        *first_turn,
        {"role": "assistant", "content": assistant_blocks},
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_017R7ACrx7NF7sLDDtvdQ1u9", "content": "No errors."},
                {"type": "text", "text": "Summarise."},
            ],
        },
    ]
    stack.an.reply_json(_message("The sandbox has no errors.", usage={"input_tokens": 700, "output_tokens": 9}))
    second = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=tools,  # type: ignore[arg-type]
        messages=history,  # type: ignore[arg-type]
    )
    assert [(b.type, getattr(b, "text", None)) for b in second.content] == [("text", "The sandbox has no errors.")]
    sent = stack.an.last.body
    assert sent["messages"] == history
    sent_thinking = sent["messages"][1]["content"][0]
    assert sent_thinking["type"] == "thinking"
    assert sent_thinking["signature"] == TOOL_SIGNATURE
    assert sent_thinking["thinking"] == "The user wants me to call checkSandboxErrors immediately."
    assert sent["messages"][1]["content"][1]["id"] == "toolu_017R7ACrx7NF7sLDDtvdQ1u9"
    rows = stack.usage_rows(key_id, 2)
    _assert_usage(rows[0], input=599, output=59, reasoning=18)
    _assert_usage(rows[1], input=700, output=9)


def test_recorded_tool_loop_request_passes_through_unchanged(stack: Stack) -> None:
    """The composed Claude-Code-like request (cached system block, thinking, tool loop, metadata) reaches
    the upstream as sent, streamed."""
    key, key_id = stack.new_key("an-plan")
    request = orjson.loads(fixture("anthropic/request_thinking_tools.json").read_bytes())
    params = {k: v for k, v in request.items() if k != "stream"} | {"model": "claude-sonnet-4-6"}
    stack.an.replay(fixture("anthropic/stream_text.sse"))
    with stack.anthropic(key).messages.stream(**params) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text"
    assert final.content[0].text == "Hello there!"
    sent = stack.an.last.body
    assert sent == {**request, "model": AN_UPSTREAM_MODEL}
    assert sent["messages"][1]["content"][0]["signature"] == "EqQBCgIYAhIMc2lnbmF0dXJlLWV4YW1wbGU="
    assert sent["system"][0]["cache_control"] == {"type": "ephemeral"}
    _assert_usage(stack.usage_row(key_id), input=11, output=6)


# -- passthrough -----------------------------------------------------------------------------------------------


def test_cache_control_and_beta_header_pass_through_with_beta_query(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    stack.an.reply_json(
        _message(
            "Cached answer.",
            usage={
                "input_tokens": 10,
                "cache_creation_input_tokens": 300,
                "cache_read_input_tokens": 1200,
                "output_tokens": 4,
            },
        )
    )
    system = [
        {"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Project rules.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Long context here.", "cache_control": {"type": "ephemeral"}}],
        }
    ]
    raw = stack.anthropic(key).beta.messages.with_raw_response.create(
        model="claude-sonnet-4-6",
        max_tokens=512,
        system=system,  # type: ignore[arg-type]
        messages=messages,  # type: ignore[arg-type]
        betas=["prompt-caching-2024-07-31", "interleaved-thinking-2025-05-14"],
        metadata={"user_id": "user_123"},
        extra_body={"context_management": {"edits": [{"type": "clear_thinking_20251015"}]}},
        extra_query={"beta": "true"},  # as Claude Code sends it
    )
    assert raw.http_request.url.params.get("beta") == "true"
    answer = raw.parse()
    assert [(b.type, getattr(b, "text", None)) for b in answer.content] == [("text", "Cached answer.")]
    assert answer.usage.input_tokens == 10
    assert answer.usage.cache_read_input_tokens == 1200
    assert answer.usage.cache_creation_input_tokens == 300
    assert answer.usage.output_tokens == 4
    sent = stack.an.last
    assert sent.path == "/v1/messages"
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
    assert sent.body["system"] == system
    assert sent.body["messages"] == messages
    assert sent.body["metadata"] == {"user_id": "user_123"}
    assert sent.body["context_management"] == {"edits": [{"type": "clear_thinking_20251015"}]}
    # canonical input counts the whole prompt: 10 uncached + 1200 read + 300 written
    _assert_usage(stack.usage_row(key_id), input=1510, output=4, cached=1200)


def test_streamed_cache_usage_is_recorded(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    start = _message("", usage={"input_tokens": 7, "cache_read_input_tokens": 2048, "output_tokens": 1}, content=[])
    start["stop_reason"] = None
    stack.an.reply_sse(
        anthropic_frames(
            [
                {"type": "message_start", "message": start},
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "From cache."}},
                {"type": "content_block_stop", "index": 0},
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
                {"type": "message_stop"},
            ]
        )
    )
    with stack.anthropic(key).messages.stream(
        model="m", max_tokens=64, messages=[{"role": "user", "content": "again"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "From cache."
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (7, 2048, 5)
    _assert_usage(stack.usage_row(key_id), input=2055, output=5, cached=2048)


def test_claude_code_fields_are_forwarded_as_they_are(stack: Stack) -> None:
    key, _ = stack.new_key("an-plan")
    stack.an.replay(fixture("anthropic/message_text.json"))
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 32000,
        "messages": [
            {"role": "system", "content": "System turn inside messages (beta)."},
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
        ],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
        "metadata": {"user_id": "session_abc"},
        "temperature": 1,
    }
    answer = httpx.post(
        f"{stack.url}/v1/messages?beta=true",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219"},
        content=orjson.dumps(body),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"] == [{"type": "text", "text": "Hello!"}]
    sent = stack.an.last
    assert sent.body == {**body, "model": AN_UPSTREAM_MODEL, "stream": False}
    assert sent.headers["anthropic-beta"] == "claude-code-20250219"


# -- count_tokens and models --------------------------------------------------------------------------------


def test_count_tokens_answers_without_calling_the_upstream(stack: Stack) -> None:
    key, key_id = stack.new_key("an-plan")
    client = stack.anthropic(key)
    small = client.messages.count_tokens(
        model="claude-sonnet-4-6",
        system="You are terse.",  # 14 characters
        messages=[{"role": "user", "content": "Hello, how many tokens is this?"}],  # 31 characters
    )
    assert small.input_tokens == 12  # ceil(45 / 4): the documented estimate, four characters a token
    big = client.messages.count_tokens(
        model="claude-sonnet-4-6",
        messages=[{"role": "user", "content": "x" * 4000}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
    )
    assert big.input_tokens > 1000
    assert stack.an.requests == []
    assert stack.gateway.usage(key_id=key_id) == []  # an estimate is not a billed request


def test_models_in_anthropic_shape_when_anthropic_version_is_sent(stack: Stack) -> None:
    key, _ = stack.new_key("an-plan")
    page = stack.anthropic(key).models.list()
    assert [(m.type, m.id) for m in page.data] == [("model", "an-plan")]
    assert page.data[0].display_name == "an-plan"
    assert page.has_more is False
    assert page.first_id == "an-plan"
    assert page.last_id == "an-plan"
    raw = httpx.get(f"{stack.url}/v1/models", headers={"x-api-key": key, "anthropic-version": "2023-06-01"})
    body = raw.json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"}
    assert body["data"][0]["created_at"].endswith("Z")
    assert stack.an.requests == []
