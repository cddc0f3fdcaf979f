"""The OpenAI SDK's Responses API (``client.responses``) against ``apipod serve`` over real sockets, in front of
the fake upstreams of tests/integration/http/matrix_support.py: text (streamed and not), tool loops (function
tools, parallel calls, a custom free-form tool), reasoning surfacing as summary items, JSON output, errors in
OpenAI's shape, ``store``/``previous_response_id``/``retrieve``/``delete``, and the usage rows.

docs/protocols/openai-responses.md is the wire reference (event order §6.3, usage §7, errors §9, store §10).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.fakes.scripted import Recorded, Reply
from tests.fixture_path import fixture
from tests.integration.http.matrix_support import (
    PLANS,
    STRICT,
    Call,
    Matrix,
    anthropic_stream,
    declared_tools,
    gemini_response,
    openai_completion,
    openai_stream,
    sse_events,
    start_matrix,
    tool_calls_sent,
    tool_results_sent,
)

MODEL = "gpt-5.1-codex"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
CLOCK = {
    "type": "function",
    "name": "get_time",
    "description": "Local time in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
APPLY_PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch to the workspace."}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
# anthropic/stream_thinking_then_text.sse
THINKING = "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185"
THINKING_ANSWER = "925 ÷ 5 = 185"
TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    yield from start_matrix(tmp_path_factory.mktemp("responses-clients"))


@pytest.fixture(autouse=True)
def _clean(matrix: Matrix) -> None:
    matrix.reset()


def _row(matrix: Matrix, key_id: str, *, input: int, output: int, reasoning: int = 0) -> None:
    row = matrix.usage_row(key_id)
    assert row["status"] == "success", row
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (input, output, reasoning), row


def _dedupe(types: list[str]) -> list[str]:
    """Event types with runs of the same type collapsed (deltas)."""
    return [t for n, t in enumerate(types) if n == 0 or types[n - 1] != t]


def _assert_terminal_usage(usage: Any, *, input: int, output: int, reasoning: int = 0) -> None:
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (input, output, input + output)
    assert usage.input_tokens_details.cached_tokens == 0
    assert usage.output_tokens_details.reasoning_tokens == reasoning


# -- text --------------------------------------------------------------------------------------------------------
def test_text_non_streamed(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    matrix.oa.reply_json(openai_completion(text="Hello there.", usage=(17, 3)))
    response = matrix.openai(key).responses.create(model=MODEL, instructions="Be brief.", input="Hi")
    assert response.object == "response"
    assert response.id.startswith("resp_"), response.id
    assert response.status == "completed"
    assert response.output_text == "Hello there."
    [item] = response.output
    assert (item.type, item.role, item.status) == ("message", "assistant", "completed")
    _assert_terminal_usage(response.usage, input=17, output=3)
    sent = matrix.upstream_body("openai")
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert sent["stream"] is False
    _row(matrix, key_id, input=17, output=3)


def test_text_streamed_with_the_stream_helper(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["anthropic"])
    matrix.an.reply_sse(anthropic_stream(text="Bonjour tout le monde.", usage=(25, 6)))
    with matrix.openai(key).responses.stream(model=MODEL, input="Say bonjour") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert _dedupe([e.type for e in events]) == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Bonjour tout le monde."
    assert len([e for e in events if e.type == "response.output_text.delta"]) == 4  # streamed word by word
    assert events[0].response.status == "in_progress" and events[0].response.usage is None
    assert final.output_text == "Bonjour tout le monde."
    assert final.status == "completed"
    _assert_terminal_usage(final.usage, input=25, output=6)
    assert matrix.upstream_body("anthropic")["stream"] is True
    _row(matrix, key_id, input=25, output=6)


def test_text_streamed_with_create_and_x_api_key_on_the_bare_path(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    matrix.oa.reply_sse(openai_stream(text="Plain route.", usage=(9, 2)))
    answer = httpx.post(
        f"{matrix.url}/responses",
        headers={"x-api-key": key},
        json={"model": MODEL, "input": "hi", "stream": True},
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert b"event: response.created\n" in answer.content  # event lines, as OpenAI sends them
    events = sse_events(answer.content)
    assert _dedupe([e["type"] for e in events]) == TEXT_EVENTS
    assert events[-1]["response"]["usage"]["input_tokens"] == 9
    _row(matrix, key_id, input=9, output=2)


# -- tools -------------------------------------------------------------------------------------------------------
def _stream(client: Any, **params: Any) -> tuple[list[Any], Any]:
    events = list(client.responses.create(model=MODEL, stream=True, store=False, **params))
    assert events[-1].type == "response.completed", [e.type for e in events]
    return events, events[-1].response


def _function_calls(response: Any) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (item.call_id, item.name, orjson.loads(item.arguments))
        for item in response.output
        if item.type == "function_call"
    ]


def test_function_tool_loop_over_three_turns(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    client = matrix.openai(key)
    paris = Call("get_weather", {"city": "Paris"}, id="call_weather_1")
    clock = Call("get_time", {"city": "Paris"}, id="call_time_1")
    matrix.oa.reply_sse(openai_stream(calls=(paris,), usage=(40, 12)))
    matrix.oa.reply_sse(openai_stream(calls=(clock,), usage=(60, 11)))
    matrix.oa.reply_sse(openai_stream(text="Sunny, and it is noon.", usage=(80, 7)))
    history: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": "Weather and time in Paris?"}]

    events, first = _stream(client, input=history, tools=[WEATHER, CLOCK])
    assert _function_calls(first) == [("call_weather_1", "get_weather", {"city": "Paris"})]
    types = _dedupe([e.type for e in events])
    assert types[2:6] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ]
    added = next(e for e in events if e.type == "response.output_item.added")
    assert (added.item.type, added.item.name, added.item.arguments) == ("function_call", "get_weather", "")
    history += [
        {"type": "function_call", "call_id": "call_weather_1", "name": "get_weather", "arguments": paris.arguments},
        {"type": "function_call_output", "call_id": "call_weather_1", "output": "sunny"},
    ]

    _, second = _stream(client, input=history, tools=[WEATHER, CLOCK])
    assert _function_calls(second) == [("call_time_1", "get_time", {"city": "Paris"})]
    history += [
        {"type": "function_call", "call_id": "call_time_1", "name": "get_time", "arguments": clock.arguments},
        {"type": "function_call_output", "call_id": "call_time_1", "output": "12:00"},
    ]

    _, third = _stream(client, input=history, tools=[WEATHER, CLOCK])
    assert third.output_text == "Sunny, and it is noon."
    _assert_terminal_usage(third.usage, input=80, output=7)

    sent = matrix.upstream_body("openai")
    assert declared_tools("openai", sent) == {t["name"]: t["parameters"] for t in (WEATHER, CLOCK)}
    assert [(m["role"], m.get("tool_call_id")) for m in sent["messages"]] == [
        ("user", None),
        ("assistant", None),
        ("tool", "call_weather_1"),
        ("assistant", None),
        ("tool", "call_time_1"),
    ]
    assert [m["tool_calls"][0]["id"] for m in sent["messages"] if m["role"] == "assistant"] == [
        "call_weather_1",
        "call_time_1",
    ]
    assert [m["content"] for m in sent["messages"] if m["role"] == "tool"] == ["sunny", "12:00"]
    rows = matrix.usage_rows(key_id, 3)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(40, 12), (60, 11), (80, 7)]


def test_parallel_tool_calls_in_one_answer(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    client = matrix.openai(key)
    matrix.oa.replay(fixture("openai/chat_stream_parallel_tool_calls_include_usage.sse"))
    tools = [
        {
            **WEATHER,
            "name": "GetWeatherArgs",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {
            **WEATHER,
            "name": "get_stock_price",
            "parameters": {"type": "object", "properties": {"ticker": {"type": "string"}}},
        },
    ]
    history: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": "Weather in Edinburgh and AAPL?"}]
    events, first = _stream(client, input=history, tools=tools, parallel_tool_calls=True)
    calls = _function_calls(first)
    assert calls == [
        ("call_JMW1whyEaYG438VE1OIflxA2", "GetWeatherArgs", {"city": "Edinburgh", "country": "GB", "units": "c"}),
        ("call_DNYTawLBoN8fj3KN6qU9N1Ou", "get_stock_price", {"ticker": "AAPL", "exchange": "NASDAQ"}),
    ]
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.name) for e in added] == [(0, "GetWeatherArgs"), (1, "get_stock_price")]
    done = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert done == [0, 1]  # one item at a time, never interleaved
    _assert_terminal_usage(first.usage, input=149, output=60)
    assert matrix.upstream_body("openai").get("parallel_tool_calls") in (True, None)

    for call_id, name, args in calls:
        history.append(
            {"type": "function_call", "call_id": call_id, "name": name, "arguments": orjson.dumps(args).decode()}
        )
    history += [
        {"type": "function_call_output", "call_id": calls[0][0], "output": "8 C, rain"},
        {"type": "function_call_output", "call_id": calls[1][0], "output": "$231.40"},
    ]
    matrix.oa.reply_sse(openai_stream(text="Rainy; AAPL at $231.40.", usage=(190, 9)))
    _, second = _stream(client, input=history, tools=tools, parallel_tool_calls=True)
    assert second.output_text == "Rainy; AAPL at $231.40."
    sent = matrix.upstream_body("openai")
    [assistant] = [m for m in sent["messages"] if m["role"] == "assistant"]
    assert [c["id"] for c in assistant["tool_calls"]] == [calls[0][0], calls[1][0]]
    assert [(m["tool_call_id"], m["content"]) for m in sent["messages"] if m["role"] == "tool"] == [
        (calls[0][0], "8 C, rain"),
        (calls[1][0], "$231.40"),
    ]
    rows = matrix.usage_rows(key_id, 2)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(149, 60), (190, 9)]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_custom_tool_round_trip(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    client = matrix.openai(key)
    seen: dict[str, Any] = {}
    frames = openai_stream if kind == "openai" else anthropic_stream

    def call_apply_patch(request: Recorded) -> Reply:
        """Calls apply_patch through whatever single string parameter the gateway declared."""
        schema = seen["schema"] = declared_tools(kind, request.body).get("apply_patch", {})
        field = next(iter(schema.get("properties", {})), "input")
        seen["field"] = field
        return Reply(frames=frames(calls=(Call("apply_patch", {field: PATCH}, id="call_patch_1"),), usage=(70, 30)))

    fake = matrix.oa if kind == "openai" else matrix.an
    fake.hook(call_apply_patch)
    history: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": "Create hello.txt"}]
    events, first = _stream(client, input=history, tools=[APPLY_PATCH])
    properties = seen["schema"].get("properties", {})
    assert [spec.get("type") for spec in properties.values()] == ["string"], seen  # one string parameter
    assert seen["schema"].get("required") in (None, [seen["field"]]), seen
    [item] = first.output
    assert (item.type, item.call_id, item.name, item.input) == (
        "custom_tool_call",
        "call_patch_1",
        "apply_patch",
        PATCH,
    )
    types = {e.type for e in events}
    assert "response.function_call_arguments.delta" not in types  # never a function_call for a custom tool
    [done] = [e for e in events if e.type == "response.custom_tool_call_input.done"]
    assert done.input == PATCH
    assert "".join(e.delta for e in events if e.type == "response.custom_tool_call_input.delta") == PATCH

    history += [
        {"type": "custom_tool_call", "call_id": "call_patch_1", "name": "apply_patch", "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": "call_patch_1", "output": "Success. A hello.txt"},
    ]
    fake.reply_sse(frames(text="Created hello.txt.", usage=(110, 5)))
    _, second = _stream(client, input=history, tools=[APPLY_PATCH])
    assert second.output_text == "Created hello.txt."
    sent = matrix.upstream_body(kind)
    assert tool_calls_sent(kind, sent) == [("call_patch_1", "apply_patch", {seen["field"]: PATCH})]
    assert tool_results_sent(kind, sent) == [("call_patch_1", "Success. A hello.txt")]
    rows = matrix.usage_rows(key_id, 2)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(70, 30), (110, 5)]


# -- reasoning ---------------------------------------------------------------------------------------------------
def _reasoning_summary(response: Any) -> str:
    return "".join(s.text for item in response.output if item.type == "reasoning" for s in item.summary)


def test_anthropic_thinking_surfaces_as_reasoning_summary(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["anthropic"])
    matrix.an.replay(fixture("anthropic/stream_thinking_then_text.sse"))
    events, final = _stream(
        matrix.openai(key), input="What is 925 / 5?", reasoning={"effort": "medium", "summary": "auto"}
    )
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert _reasoning_summary(final) == THINKING
    assert final.output_text == THINKING_ANSWER
    deltas = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert "".join(deltas) == THINKING
    types = _dedupe([e.type for e in events])
    assert types.index("response.reasoning_summary_part.added") < types.index("response.reasoning_summary_text.delta")
    assert types.index("response.reasoning_summary_part.done") < types.index("response.content_part.added")
    assert "thinking" in matrix.upstream_body("anthropic")  # the effort asked the upstream to think
    _assert_terminal_usage(final.usage, input=69, output=53)
    _row(matrix, key_id, input=69, output=53)


def test_openai_reasoning_content_surfaces_as_reasoning_summary(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    matrix.oa.reply_sse(openai_stream(reasoning="Two plus two is four.", text="4", usage=(15, 12)))
    events, final = _stream(matrix.openai(key), input="2+2?", reasoning={"summary": "auto"})
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert _reasoning_summary(final) == "Two plus two is four."
    assert final.output_text == "4"
    assert "response.reasoning_summary_text.done" in {e.type for e in events}
    _row(matrix, key_id, input=15, output=12)


SIGNATURE = "RXhhbXBsZVNpZ25hdHVyZQ=="


def test_encrypted_reasoning_goes_back_only_to_the_kind_that_made_it(matrix: Matrix) -> None:
    """``include: ["reasoning.encrypted_content"]``: Anthropic's signed thinking comes back as a reasoning item with
    an opaque ``encrypted_content``; replayed (``store: false``, as Codex does) it reaches Anthropic again as the
    signed thinking block, and is dropped before another upstream kind, which could not verify it."""
    key, key_id = matrix.new_key(PLANS["anthropic"])
    paris = Call("get_weather", {"city": "Paris"}, id="toolu_paris")
    matrix.an.reply_sse(anthropic_stream(thinking="I should look it up.", signature=SIGNATURE, calls=(paris,)))
    request = {"reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"]}
    history: list[dict[str, Any]] = [{"type": "message", "role": "user", "content": "Weather in Paris?"}]
    _, first = _stream(matrix.openai(key), input=history, tools=[WEATHER], **request)
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    reasoning = first.output[0]
    assert reasoning.encrypted_content, reasoning
    assert _reasoning_summary(first) == "I should look it up."
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": "toolu_paris", "output": "sunny"})

    matrix.an.reply_sse(anthropic_stream(text="Sunny.", usage=(50, 2)))
    _, second = _stream(matrix.openai(key), input=history, tools=[WEATHER], **request)
    assert second.output_text == "Sunny."
    [assistant] = [m for m in matrix.upstream_body("anthropic")["messages"] if m["role"] == "assistant"]
    assert assistant["content"][0] == {"type": "thinking", "thinking": "I should look it up.", "signature": SIGNATURE}
    assert assistant["content"][1]["type"] == "tool_use" and assistant["content"][1]["id"] == "toolu_paris"

    other, _ = matrix.new_key(PLANS["google_ai_studio"])
    matrix.gm.reply_json(gemini_response(text="Sunny.", usage=(30, 2)))
    matrix.openai(other).responses.create(model=MODEL, input=history, tools=[WEATHER], store=False)
    sent = orjson.dumps(matrix.upstream_body("google_ai_studio"))
    assert SIGNATURE.encode() not in sent and b"I should look it up." not in sent, sent
    assert b"functionCall" in sent and b"functionResponse" in sent  # the rest of the turn is kept
    assert len(matrix.usage_rows(key_id, 2)) == 2


# -- structured output ---------------------------------------------------------------------------------------------
JSON_FORMAT = {"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}}


def test_json_schema_reaches_openai_as_response_format(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    matrix.oa.reply_json(openai_completion(text='{"name":"Ada","age":36}', usage=(30, 9)))
    response = matrix.openai(key).responses.create(model=MODEL, input="Ada, 36", text=JSON_FORMAT)
    assert orjson.loads(response.output_text) == {"name": "Ada", "age": 36}
    assert matrix.upstream_body("openai")["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON, "strict": True},
    }
    _row(matrix, key_id, input=30, output=9)


def test_json_schema_reaches_gemini_as_generation_config(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["google_ai_studio"])
    matrix.gm.reply_json(gemini_response(text='{"name":"Ada","age":36}', usage=(30, 9)))
    response = matrix.openai(key).responses.create(model=MODEL, input="Ada, 36", text=JSON_FORMAT)
    assert orjson.loads(response.output_text) == {"name": "Ada", "age": 36}
    config = matrix.upstream_body("google_ai_studio")["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    assert schema is not None, config
    assert set(schema["properties"]) == {"name", "age"} and schema["required"] == ["name", "age"]
    _row(matrix, key_id, input=30, output=9)


# -- errors ----------------------------------------------------------------------------------------------------------
def test_unknown_model_is_404_in_openai_shape(matrix: Matrix) -> None:
    key, _ = matrix.new_key(STRICT)
    with pytest.raises(openai.NotFoundError) as caught:
        matrix.openai(key).responses.create(model="no-such-model", input="hi")
    assert caught.value.status_code == 404
    body = caught.value.response.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    assert "no-such-model" in body["error"]["message"]
    assert matrix.generations("openai") == []


def test_bad_key_is_401(matrix: Matrix) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        matrix.openai("sk-not-a-key").responses.create(model=MODEL, input="hi")
    assert caught.value.status_code == 401
    assert "message" in caught.value.response.json()["error"]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"model": "m"}',
        b'{"model": "m", "input": 42}',
        b'{"model": "m", "input": "hi", "tools": [{"type": "function"}]}',
    ],
    ids=["not-json", "no-input", "input-not-list", "tool-without-name"],
)
def test_malformed_body_is_400(matrix: Matrix, content: bytes) -> None:
    key, _ = matrix.new_key(PLANS["openai"])
    answer = httpx.post(
        f"{matrix.url}/v1/responses",
        headers={"authorization": f"Bearer {key}", "content-type": "application/json"},
        content=content,
        timeout=20,
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"], error
    assert matrix.generations("openai") == []


def test_upstream_failure_mid_stream_ends_with_response_failed(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    frames = openai_stream(text="This answer will be cut off before it ends.", usage=(10, 9))
    matrix.oa.reply_sse(frames, cut_after=4)
    answer = httpx.post(
        f"{matrix.url}/v1/responses",
        headers={"authorization": f"Bearer {key}"},
        json={"model": MODEL, "input": "hi", "stream": True},
        timeout=20,
    )
    assert answer.status_code == 200  # the stream had started
    events = sse_events(answer.content)
    types = [e["type"] for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.failed", types
    assert "response.completed" not in types
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["code"] and failed["error"]["message"], failed
    assert [e["sequence_number"] for e in events] == list(range(len(events)))

    # the SDK sees the same terminal event (an ``error`` event before it would raise APIError instead)
    matrix.oa.reply_sse(frames, cut_after=4)
    seen = [e.type for e in matrix.openai(key).responses.create(model=MODEL, input="hi", stream=True)]
    assert seen[-1] == "response.failed", seen
    assert [r["status"] for r in matrix.usage_rows(key_id, 2)] == ["upstream_error", "upstream_error"]


def test_upstream_error_before_the_stream_is_an_http_error(matrix: Matrix) -> None:
    key, _ = matrix.new_key(PLANS["openai"])
    matrix.oa.reply_error(400, "This model's maximum context length is 128000 tokens.", code="context_length_exceeded")
    with pytest.raises(openai.BadRequestError) as caught:
        list(matrix.openai(key).responses.create(model=MODEL, input="hi", stream=True))
    assert "maximum context length" in caught.value.response.json()["error"]["message"]


# -- store, previous_response_id, retrieve, delete --------------------------------------------------------------------
def test_store_previous_response_id_retrieve_and_delete(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    other, _ = matrix.new_key(PLANS["openai"])
    client = matrix.openai(key)
    matrix.oa.reply_json(openai_completion(text="Nice to meet you, Ada.", usage=(12, 6)))
    matrix.oa.reply_sse(openai_stream(text="Your name is Ada.", usage=(30, 5)))

    first = client.responses.create(model=MODEL, input="My name is Ada.", store=True)
    assert first.store is True
    events = list(
        client.responses.create(
            model=MODEL, input="What is my name?", previous_response_id=first.id, store=True, stream=True
        )
    )
    second = events[-1].response
    assert second.output_text == "Your name is Ada."
    assert second.previous_response_id == first.id
    assert matrix.upstream_body("openai")["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"},
    ]

    kept = client.responses.retrieve(first.id)
    assert (kept.id, kept.output_text, kept.status) == (first.id, "Nice to meet you, Ada.", "completed")
    assert client.responses.retrieve(second.id).output_text == "Your name is Ada."

    stranger = matrix.openai(other)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.delete(first.id)
    with pytest.raises(openai.BadRequestError) as caught:  # nor continue someone else's conversation
        stranger.responses.create(model=MODEL, input="And mine?", previous_response_id=first.id)
    assert caught.value.code == "previous_response_not_found"

    bare = httpx.get(f"{matrix.url}/responses/{first.id}", headers={"x-api-key": key})  # the /v1-less twin
    assert (bare.status_code, bare.json()["id"]) == (200, first.id)
    foreign = httpx.get(f"{matrix.url}/responses/{first.id}", headers={"x-api-key": other})
    assert foreign.status_code == 404 and foreign.json()["error"]["message"], foreign.text

    deleted = client.responses.delete(first.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)
    assert client.responses.retrieve(second.id).id == second.id
    rows = matrix.usage_rows(key_id, 2)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(12, 6), (30, 5)]


def test_unknown_previous_response_id_is_400(matrix: Matrix) -> None:
    key, _ = matrix.new_key(PLANS["openai"])
    with pytest.raises(openai.BadRequestError) as caught:
        matrix.openai(key).responses.create(model=MODEL, input="hi", previous_response_id="resp_unknown")
    error = caught.value.response.json()["error"]
    assert (error["param"], error["code"]) == ("previous_response_id", "previous_response_not_found"), error
    assert matrix.generations("openai") == []


def test_store_false_is_not_retrievable(matrix: Matrix) -> None:
    key, _ = matrix.new_key(PLANS["openai"])
    matrix.oa.reply_json(openai_completion(text="Ephemeral.", usage=(5, 1)))
    client = matrix.openai(key)
    response = client.responses.create(model=MODEL, input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
