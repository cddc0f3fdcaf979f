"""Full stack over real sockets: the official openai and anthropic SDKs -> ``apipod serve`` -> a Google AI
Studio upstream (tests/fakes/fake_gemini.py) speaking Gemini's wire format, fixtures replayed byte for byte.

One gateway serves most tests of this module (each test uses its own key, so usage rows never mix); the
account-rotation tests start their own gateway with two keys, because a rest is process state.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.fake_gemini import FakeGemini, text_chunk
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

KEY = "AIza-test-key-0"
KEY_B = "AIza-test-key-1"
FLASH = "gemini-2.5-flash"
PRO3 = "gemini-3-pro-preview"
ALIASES = 'aliases = [{ name = "gemini-3", routes = [{ model = "pro3", weight = 1 }] }]'

WEATHER_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
    "additionalProperties": False,
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
# What Gemini must receive for that tool: the JSON Schema keywords it rejects are gone.
WEATHER_DECLARATION = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
PARIS = {"name": "get_weather", "args": {"city": "Paris"}}
TOKYO = {"name": "get_weather", "args": {"city": "Tokyo"}}


class Stack(ProviderStack[FakeGemini]):
    pass


def load(relative: str) -> Any:
    return orjson.loads(fixture(relative).read_bytes())


def tokens(row: dict[str, Any]) -> tuple[int, int, int, int]:
    """A usage row's (input, output, cached input, reasoning) tokens."""
    return row["input_tokens"], row["output_tokens"], row["cached_input_tokens"], row["reasoning_tokens"]


def call_chunk(*calls: dict[str, Any], finish: str | None = None, signature: str | None = None, **usage: int) -> Any:
    """One Gemini chunk of functionCall parts; ``signature`` goes on the first call only, as Gemini puts it."""
    parts: list[dict[str, Any]] = []
    for n, call in enumerate(calls):
        part: dict[str, Any] = {"functionCall": call}
        if signature and n == 0:
            part["thoughtSignature"] = signature
        parts.append(part)
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": FLASH, "responseId": "fake-tools"}
    if usage:
        body["usageMetadata"] = {**usage, "totalTokenCount": sum(usage.values())}
    return body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    fake = FakeGemini(keys=[KEY])
    with serve(fake) as url:
        toml = catalog(
            provider("gemini", "google_ai_studio", url, accounts=[KEY]),
            models=[model("flash", "gemini", FLASH), model("pro3", "gemini", PRO3)],
            plans=[plan("pro", {"flash": 1}, extra=ALIASES)],
        )
        with ApipodProcess(catalog=toml, tmp=tmp_path_factory.mktemp("gemini")) as gateway:
            yield Stack(fake, gateway)


@pytest.fixture(autouse=True)
def _clean_script(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "stack" in request.fixturenames:
        request.getfixturevalue("stack").fake.replies.clear()  # a failed test leaves nothing for the next


# -- text ------------------------------------------------------------------------------------------------------
CACHED_ANSWER = text_chunk(
    "Bonjour, monde.",
    finish="STOP",
    promptTokenCount=120,
    candidatesTokenCount=7,
    cachedContentTokenCount=100,
    thoughtsTokenCount=30,
)


def test_openai_text_non_streaming(stack: Stack) -> None:
    key, key_id = stack.key("openai-text")
    stack.fake.reply_json(CACHED_ANSWER)
    answer = chat(
        stack.openai(key),
        model="pro",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello in French."}],
    )
    assert answer.model == "pro"
    assert answer.choices[0].message.content == "Bonjour, monde."
    assert answer.choices[0].finish_reason == "stop"
    usage = answer.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 37, 157)
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert usage.completion_tokens_details.reasoning_tokens == 30

    sent = stack.fake.last
    assert sent.path == f"/v1beta/models/{FLASH}:generateContent"
    assert sent.headers["x-goog-api-key"] == KEY
    assert "key" not in sent.query  # the key never travels in the URL
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "Say hello in French."}]}]
    assert sent.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]

    [row] = stack.rows(key_id)
    assert (row["status"], row["routed_model"], row["upstream_provider"]) == ("success", "flash", "gemini/#0")
    assert tokens(row) == (120, 37, 100, 30)
    assert row["token_count"] == 157


def test_openai_text_streaming(stack: Stack) -> None:
    key, key_id = stack.key("openai-stream")
    stack.fake.reply_stream(
        [
            text_chunk("The ", promptTokenCount=9, candidatesTokenCount=1),
            text_chunk("quick ", promptTokenCount=9, candidatesTokenCount=2),
            text_chunk("fox.", finish="STOP", promptTokenCount=9, candidatesTokenCount=3, cachedContentTokenCount=4),
        ]
    )
    chunks = chat_stream(stack.openai(key), model="pro", messages=[{"role": "user", "content": "A fox?"}])
    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == [
        "The ",
        "quick ",
        "fox.",
    ]
    assert finish_reasons(chunks) == ["stop"]
    usage = chunks[-1].usage
    assert chunks[-1].choices == []
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (9, 3, 4)

    sent = stack.fake.last
    assert sent.path == f"/v1beta/models/{FLASH}:streamGenerateContent"
    assert sent.query["alt"] == ["sse"]
    [row] = stack.rows(key_id)
    assert tokens(row) == (9, 3, 4, 0)
    assert row["ttft_ms"] is not None


def test_anthropic_text_non_streaming(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-text")
    stack.fake.reply_json(CACHED_ANSWER)
    answer = message(
        stack.anthropic(key),
        model="pro",
        max_tokens=256,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello in French."}],
    )
    assert answer.model == "pro"
    assert blocks(answer) == [{"type": "text", "text": "Bonjour, monde."}]
    assert answer.stop_reason == "end_turn"
    # Anthropic's input_tokens is the uncached remainder.
    assert (answer.usage.input_tokens, answer.usage.cache_read_input_tokens, answer.usage.output_tokens) == (
        20,
        100,
        37,
    )
    sent = stack.fake.last.body
    assert sent["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert sent["generationConfig"]["maxOutputTokens"] == 256
    [row] = stack.rows(key_id)
    assert tokens(row) == (120, 37, 100, 30)


def test_anthropic_text_streaming(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-stream")
    stack.fake.reply_stream(
        [
            text_chunk("Once ", promptTokenCount=11, candidatesTokenCount=1),
            text_chunk("upon ", promptTokenCount=11, candidatesTokenCount=2),
            text_chunk("a time.", finish="STOP", promptTokenCount=11, candidatesTokenCount=4),
        ]
    )
    events, final = message_stream(
        stack.anthropic(key), model="pro", max_tokens=100, messages=[{"role": "user", "content": "Tell a story."}]
    )
    assert events.count("text") == 3
    assert blocks(final) == [{"type": "text", "text": "Once upon a time."}]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 4)
    assert stack.fake.last.query["alt"] == ["sse"]
    [row] = stack.rows(key_id)
    assert tokens(row) == (11, 4, 0, 0)


# -- tools -----------------------------------------------------------------------------------------------------
def test_openai_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.key("openai-stream-tools")
    stack.fake.reply_stream(
        [
            call_chunk(PARIS, promptTokenCount=40, candidatesTokenCount=5),
            call_chunk(TOKYO, finish="STOP", promptTokenCount=40, candidatesTokenCount=10),
        ]
    )
    chunks = chat_stream(
        stack.openai(key),
        model="pro",
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL],
    )
    calls = stream_tool_calls(chunks)
    assert sorted(calls) == [0, 1]
    assert [(calls[i]["name"], orjson.loads(calls[i]["arguments"])) for i in (0, 1)] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    ids = [calls[i]["id"] for i in (0, 1)]
    assert all(i.startswith("call_") for i in ids)
    assert ids[0] != ids[1]  # parallel calls of one function get distinct ids
    assert finish_reasons(chunks) == ["tool_calls"]
    assert stack.fake.last.body["tools"] == [{"functionDeclarations": [WEATHER_DECLARATION]}]
    [row] = stack.rows(key_id)
    assert tokens(row) == (40, 10, 0, 0)


def test_openai_non_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.key("openai-tools")
    stack.fake.reply_json(call_chunk(PARIS, TOKYO, finish="STOP", promptTokenCount=40, candidatesTokenCount=12))
    answer = chat(
        stack.openai(key),
        model="pro",
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls
    assert [(c.function.name, orjson.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Tokyo"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert stack.fake.last.body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    [row] = stack.rows(key_id)
    assert tokens(row) == (40, 12, 0, 0)


def test_anthropic_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-stream-tools")
    stack.fake.reply_stream(
        [
            text_chunk("Checking both.", promptTokenCount=50, candidatesTokenCount=3),
            call_chunk(PARIS, promptTokenCount=50, candidatesTokenCount=8),
            call_chunk(TOKYO, finish="STOP", promptTokenCount=50, candidatesTokenCount=14),
        ]
    )
    events, final = message_stream(
        stack.anthropic(key),
        model="pro",
        max_tokens=512,
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL_ANTHROPIC],
    )
    content = blocks(final)
    assert [(b["type"], b.get("text"), b.get("name"), b.get("input")) for b in content] == [
        ("text", "Checking both.", None, None),
        ("tool_use", None, "get_weather", {"city": "Paris"}),
        ("tool_use", None, "get_weather", {"city": "Tokyo"}),
    ]
    assert content[1]["id"] != content[2]["id"]
    assert final.stop_reason == "tool_use"
    assert events.count("content_block_start") == 3
    assert events.count("input_json") == 2  # the arguments arrived as input_json_delta
    assert stack.fake.last.body["tools"] == [{"functionDeclarations": [WEATHER_DECLARATION]}]
    [row] = stack.rows(key_id)
    assert tokens(row) == (50, 14, 0, 0)


def test_anthropic_non_streamed_parallel_tool_calls(stack: Stack) -> None:
    key, _ = stack.key("anthropic-tools")
    stack.fake.reply_json(call_chunk(PARIS, TOKYO, finish="STOP", promptTokenCount=40, candidatesTokenCount=12))
    answer = message(
        stack.anthropic(key),
        model="pro",
        max_tokens=512,
        messages=[{"role": "user", "content": "Weather in Paris and Tokyo?"}],
        tools=[WEATHER_TOOL_ANTHROPIC],
    )
    assert answer.stop_reason == "tool_use"
    content = blocks(answer)
    assert [(b["type"], b["input"]) for b in content] == [
        ("tool_use", {"city": "Paris"}),
        ("tool_use", {"city": "Tokyo"}),
    ]
    assert content[0]["id"] != content[1]["id"]


# -- multi-turn tool conversations with thought signatures -----------------------------------------------------
def test_openai_tool_turns_carry_the_thought_signature(stack: Stack) -> None:
    key, key_id = stack.key("openai-signature")
    answer_body = load("gemini/response_function_call_thought_signature.json")
    signature = answer_body["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    stack.fake.reply_json(answer_body)
    client = stack.openai(key)
    question = {"role": "user", "content": "Weather in San Francisco?"}
    first = chat(client, model="gemini-3", messages=[question], tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls
    assert (call.function.name, orjson.loads(call.function.arguments)) == ("weather", {"location": "San Francisco"})
    assert call.model_extra == {"extra_content": {"google": {"thought_signature": signature}}}
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (29, 15 + 1801)
    assert stack.fake.last.path == f"/v1beta/models/{PRO3}:generateContent"

    stack.fake.reply_json(text_chunk("Sunny, 21C.", finish="STOP", promptTokenCount=60, candidatesTokenCount=4))
    assistant = first.choices[0].message.model_dump(exclude_none=True)  # extra_content included
    second = chat(
        client,
        model="gemini-3",
        messages=[question, assistant, {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}],
        tools=[WEATHER_TOOL],
    )
    assert second.choices[0].message.content == "Sunny, 21C."
    assert stack.fake.signatures_sent() == [signature]
    contents = stack.fake.last.body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "weather", "args": {"location": "San Francisco"}}, "thoughtSignature": signature}
    ]
    assert contents[2]["parts"] == [{"functionResponse": {"name": "weather", "response": {"result": "sunny, 21C"}}}]
    assert [tokens(r) for r in stack.rows(key_id, 2)] == [(60, 4, 0, 0), (29, 1816, 0, 1801)]


def test_openai_streamed_tool_turns_carry_the_thought_signature(stack: Stack) -> None:
    key, key_id = stack.key("openai-stream-signature")
    path = fixture("gemini/stream_function_call_thought_signature.sse")
    first_frame = orjson.loads(path.read_bytes().split(b"\r\n\r\n")[0].removeprefix(b"data: "))
    signature = first_frame["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    stack.fake.replay(path)
    client = stack.openai(key)
    question = {"role": "user", "content": "Weather in San Francisco?"}
    chunks = chat_stream(client, model="gemini-3", messages=[question], tools=[WEATHER_TOOL])
    [call] = stream_tool_calls(chunks).values()
    assert (call["name"], orjson.loads(call["arguments"])) == ("weather", {"location": "San Francisco"})
    assert call["extra_content"] == {"google": {"thought_signature": signature}}
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (
        29,
        15 + 804,
        804,
    )

    # Turn 2, streamed too: the client echoes the call as it assembled it, extra_content included.
    stack.fake.reply_stream([text_chunk("Foggy.", finish="STOP", promptTokenCount=70, candidatesTokenCount=2)])
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
                "extra_content": call["extra_content"],
            }
        ],
    }
    tool_result = {"role": "tool", "tool_call_id": call["id"], "content": "foggy"}
    second = chat_stream(client, model="gemini-3", messages=[question, assistant, tool_result], tools=[WEATHER_TOOL])
    assert stream_text(second) == "Foggy."
    assert stack.fake.signatures_sent() == [signature]
    assert [tokens(r) for r in stack.rows(key_id, 2)] == [(70, 2, 0, 0), (29, 819, 0, 804)]


def test_anthropic_tool_turns_carry_the_thought_signature(stack: Stack) -> None:
    """The tool_use block has no signature field: apipod remembers it by call id and puts it back on the
    functionCall part of the next turn; the thinking block comes back as the client echoes it."""
    key, key_id = stack.key("anthropic-signature")
    signature = "EpEgCo4gAb4-call-signature-0001"
    stack.fake.reply_stream(
        [
            {
                "candidates": [
                    {"content": {"role": "model", "parts": [{"text": "I need the weather.", "thought": True}]}}
                ],
                "usageMetadata": {"promptTokenCount": 30, "thoughtsTokenCount": 12, "totalTokenCount": 42},
            },
            call_chunk(
                {"name": "get_weather", "args": {"city": "Oslo"}},
                finish="STOP",
                signature=signature,
                promptTokenCount=30,
                candidatesTokenCount=6,
                thoughtsTokenCount=12,
            ),
        ]
    )
    client = stack.anthropic(key)
    question = {"role": "user", "content": "Weather in Oslo?"}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    _, first = message_stream(
        client,
        model="gemini-3",
        max_tokens=4096,
        thinking=thinking,
        messages=[question],
        tools=[WEATHER_TOOL_ANTHROPIC],
    )
    content = blocks(first)
    assert [b["type"] for b in content] == ["thinking", "tool_use"]
    assert content[0]["thinking"] == "I need the weather."
    assert (content[1]["name"], content[1]["input"]) == ("get_weather", {"city": "Oslo"})
    assert first.usage.output_tokens == 18
    # Gemini 3 takes a thinking level, not a budget (docs/protocols/gemini.md, docs/protocols/translation.md §5.2).
    assert stack.fake.last.body["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingLevel": "LOW",
    }

    stack.fake.reply_json(text_chunk("Cold.", finish="STOP", promptTokenCount=50, candidatesTokenCount=2))
    second = message(
        client,
        model="gemini-3",
        max_tokens=4096,
        thinking=thinking,
        tools=[WEATHER_TOOL_ANTHROPIC],
        messages=[
            question,
            {"role": "assistant", "content": content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": content[1]["id"], "content": "-3C"}]},
        ],
    )
    assert blocks(second) == [{"type": "text", "text": "Cold."}]
    assert stack.fake.signatures_sent() == [signature]
    contents = stack.fake.last.body["contents"]
    assert contents[1]["role"] == "model"
    assert contents[1]["parts"][-1] == {
        "functionCall": {"name": "get_weather", "args": {"city": "Oslo"}},
        "thoughtSignature": signature,
    }
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"result": "-3C"}}}]
    assert [tokens(r) for r in stack.rows(key_id, 2)] == [(50, 2, 0, 0), (30, 18, 0, 12)]


def test_anthropic_thinking_block_signature_round_trip(stack: Stack) -> None:
    """A signature on Gemini's trailing empty text part reaches the Anthropic client as a thinking block's
    signature; echoed back, it lands on the model turn's text part again."""
    key, key_id = stack.key("anthropic-text-signature")
    path = fixture("gemini/stream_text_trailing_thought_signature.sse")
    last_frame = orjson.loads(path.read_bytes().strip().split(b"\r\n\r\n")[-1].removeprefix(b"data: "))
    signature = last_frame["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    stack.fake.replay(path)
    client = stack.anthropic(key)
    question = {"role": "user", "content": "How many r in strawberry?"}
    _, first = message_stream(client, model="gemini-3", max_tokens=1024, messages=[question])
    text = 'There are **3** "r"s in strawberry.\n\nSt**r**awbe**rr**y'
    content = blocks(first)
    assert [b["text"] for b in content if b["type"] == "text"] == [text]
    assert [b["signature"] for b in content if b["type"] == "thinking"] == [signature]
    assert (first.usage.input_tokens, first.usage.output_tokens) == (9, 23 + 302)

    stack.fake.reply_json(text_chunk("You're welcome.", finish="STOP", promptTokenCount=40, candidatesTokenCount=3))
    message(
        client,
        model="gemini-3",
        max_tokens=1024,
        messages=[question, {"role": "assistant", "content": content}, {"role": "user", "content": "Thanks!"}],
    )
    contents = stack.fake.last.body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [{"text": text, "thoughtSignature": signature}]
    assert tokens(stack.rows(key_id, 2)[1]) == (9, 325, 0, 302)


# -- thinking --------------------------------------------------------------------------------------------------
THOUGHT = "**Planning the answer**\n\nThe user asks for the capital of France; answer directly."
THOUGHT_ANSWER = "The capital of France is Paris."


def thought_response(signature: str = "") -> dict[str, Any]:
    thought: dict[str, Any] = {"text": THOUGHT, "thought": True}
    if signature:
        thought["thoughtSignature"] = signature
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [thought, {"text": THOUGHT_ANSWER}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 8,
            "thoughtsTokenCount": 148,
            "totalTokenCount": 168,
        },
        "modelVersion": FLASH,
    }


def test_openai_streamed_thinking(stack: Stack) -> None:
    key, key_id = stack.key("openai-thinking-stream")
    stack.fake.replay(fixture("gemini/stream_thought_summaries.sse"))
    chunks = chat_stream(
        stack.openai(key),
        model="pro",
        messages=[{"role": "user", "content": "Capital of France?"}],
        reasoning_effort="low",
    )
    assert stream_text(chunks, "reasoning_content") == THOUGHT
    assert stream_text(chunks) == THOUGHT_ANSWER
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.completion_tokens_details.reasoning_tokens) == (
        12,
        156,
        148,
    )
    # docs/protocols/translation.md §5.2: reasoning_effort low -> a 2048-token budget.
    assert stack.fake.last.body["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 2048,
    }
    [row] = stack.rows(key_id)
    assert tokens(row) == (12, 156, 0, 148)


def test_openai_non_streamed_thinking(stack: Stack) -> None:
    key, key_id = stack.key("openai-thinking")
    stack.fake.reply_json(thought_response())
    answer = chat(
        stack.openai(key),
        model="pro",
        messages=[{"role": "user", "content": "Capital of France?"}],
        reasoning_effort="high",
    )
    assert answer.choices[0].message.reasoning_content == THOUGHT
    assert answer.choices[0].message.content == THOUGHT_ANSWER
    assert answer.usage.completion_tokens_details.reasoning_tokens == 148
    assert stack.fake.last.body["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 24576,
    }
    [row] = stack.rows(key_id)
    assert tokens(row) == (12, 156, 0, 148)


def test_anthropic_streamed_thinking(stack: Stack) -> None:
    key, key_id = stack.key("anthropic-thinking-stream")
    stack.fake.replay(fixture("gemini/stream_thought_summaries.sse"))
    events, final = message_stream(
        stack.anthropic(key),
        model="pro",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[{"role": "user", "content": "Capital of France?"}],
    )
    content = blocks(final)
    assert [(b["type"], b.get("thinking") or b.get("text")) for b in content] == [
        ("thinking", THOUGHT),
        ("text", THOUGHT_ANSWER),
    ]
    assert "thinking" in events
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 156)
    assert stack.fake.last.body["generationConfig"]["thinkingConfig"] == {
        "includeThoughts": True,
        "thinkingBudget": 2048,
    }
    [row] = stack.rows(key_id)
    assert tokens(row) == (12, 156, 0, 148)


def test_anthropic_non_streamed_thinking_signature_round_trip(stack: Stack) -> None:
    key, _ = stack.key("anthropic-thinking")
    signature = "CiQB-thought-part-signature"
    stack.fake.reply_json(thought_response(signature))
    client = stack.anthropic(key)
    question = {"role": "user", "content": "Capital of France?"}
    thinking = {"type": "enabled", "budget_tokens": 4000}
    answer = message(client, model="pro", max_tokens=8000, thinking=thinking, messages=[question])
    content = blocks(answer)
    assert content == [
        {"type": "thinking", "thinking": THOUGHT, "signature": signature},
        {"type": "text", "text": THOUGHT_ANSWER},
    ]
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (12, 156)

    stack.fake.reply_json(text_chunk("Lyon is second.", finish="STOP", promptTokenCount=30, candidatesTokenCount=4))
    message(
        client,
        model="pro",
        max_tokens=8000,
        thinking=thinking,
        messages=[
            question,
            {"role": "assistant", "content": content},
            {"role": "user", "content": "And the second city?"},
        ],
    )
    assert stack.fake.last.body["contents"][1] == {
        "role": "model",
        "parts": [{"text": THOUGHT, "thought": True, "thoughtSignature": signature}, {"text": THOUGHT_ANSWER}],
    }


# -- 429 and account rotation ----------------------------------------------------------------------------------
@pytest.fixture
def two_keys(tmp_path: Path) -> Iterator[Stack]:
    fake = FakeGemini(keys=[KEY, KEY_B])
    with serve(fake) as url:
        toml = catalog(
            provider("gemini", "google_ai_studio", url, accounts=[KEY, KEY_B]),
            models=[model("flash", "gemini", FLASH)],
            plans=[plan("pro", {"flash": 1})],
        )
        with ApipodProcess(catalog=toml, tmp=tmp_path) as gateway:
            yield Stack(fake, gateway)


def keys_used(fake: FakeGemini, since: int) -> list[str]:
    return [r.headers["x-goog-api-key"] for r in fake.requests[since:]]


def test_429_rotates_to_the_second_key_which_serves_while_the_first_rests(two_keys: Stack) -> None:
    fake = two_keys.fake
    key, key_id = two_keys.key("rotation")
    client = two_keys.openai(key)
    fake.replay(fixture("gemini/error_429_resource_exhausted.json"))
    answer = chat(client, model="pro", messages=[{"role": "user", "content": "first"}])
    assert answer.choices[0].message.content == "Echo: first"
    assert keys_used(fake, 0) == [KEY, KEY_B]
    [row] = two_keys.rows(key_id)
    assert (row["status"], row["upstream_provider"]) == ("success", "gemini/#1")
    assert [(a["account"], a["outcome"]) for a in row["attempts"]] == [
        ("gemini/#0", "failed: UpstreamRateLimitedError"),
        ("gemini/#1", "served"),
    ]
    # The fixture's RetryInfo says 34.4s: the first key rests, the second serves everything meanwhile.
    for n in range(4):
        chat(client, model="pro", messages=[{"role": "user", "content": f"more {n}"}])
    assert keys_used(fake, 2) == [KEY_B] * 4


def test_429_rest_lasts_the_retry_delay_given_streaming(two_keys: Stack) -> None:
    fake = two_keys.fake
    key, key_id = two_keys.key("rotation-stream")
    client = two_keys.openai(key)
    body = load("gemini/error_429_resource_exhausted.json")
    body["error"]["details"][1]["retryDelay"] = "1.5s"
    fake.reply_json(body, status=429)
    started = time.monotonic()
    chunks = chat_stream(client, model="pro", messages=[{"role": "user", "content": "streamed words"}])
    assert stream_text(chunks) == "Echo: streamed words"
    assert keys_used(fake, 0) == [KEY, KEY_B]
    assert two_keys.rows(key_id)[0]["upstream_provider"] == "gemini/#1"

    for n in range(2):
        chat(client, model="pro", messages=[{"role": "user", "content": f"resting {n}"}])
    assert time.monotonic() - started < 1.5, "too slow to observe the rest"
    assert keys_used(fake, 2) == [KEY_B, KEY_B]

    time.sleep(max(0.0, started + 1.7 - time.monotonic()))
    for n in range(2):
        chat(client, model="pro", messages=[{"role": "user", "content": f"rested {n}"}])
    assert keys_used(fake, 4) == [KEY, KEY_B]  # the first key is back in the rotation
