"""The dialect matrix over real sockets: every client dialect (OpenAI Chat, Anthropic Messages, OpenAI Responses,
Gemini), each through its official SDK, against every upstream kind (openai, anthropic, google_ai_studio, copilot,
antigravity, mock), in three scenarios: a streamed text answer, a streamed tool call, and a two-turn tool loop
(call, result sent back, final text). Each case asserts what the client got, what the upstream received on the
second turn, and one usage row per request carrying the upstream's token counts.

The mock upstream is not scripted: it echoes the last turn and calls the first tool when the user text starts
with ``"call "`` (``adapters/upstreams/mock.py``), so its cases assert those rules, and the usage row against the
usage the client was told.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import attrs
import orjson
import pytest

from tests.integration.harness import stream_tool_calls
from tests.integration.http.matrix_support import (
    KINDS,
    PLANS,
    Call,
    Matrix,
    script_stream,
    start_matrix,
    tool_calls_sent,
    tool_results_sent,
)

CLIENTS = ("openai_chat", "anthropic", "responses", "gemini")
SCENARIOS = ("streamed_text", "streamed_tool_call", "tool_loop")

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
DESCRIPTION = "Current weather for a city"
PARIS = Call("get_weather", {"city": "Paris"}, id="call_matrix_paris")
TOOL_PROMPT = "call get_weather for Paris"  # "call " makes the mock upstream call the first tool
TEXT_PROMPT = "Say hello"
RESULT = "sunny, 21 C"
TEXT_USAGE, CALL_USAGE, LOOP_USAGE = (13, 4), (21, 9), (34, 6)


@attrs.define
class Turn:
    """What the client got from one streamed request."""

    text: str
    calls: list[tuple[str | None, str, dict[str, Any]]]  # (call id, name, arguments)
    usage: tuple[int, int]  # (input, output) as the terminal event / chunk reported it
    finish: str


class Driver(Protocol):
    def ask(self, prompt: str, *, tools: bool) -> Turn: ...

    def answer(self, turn: Turn, result: str) -> Turn: ...


# -- one driver per client dialect, each keeping its conversation in its own wire shape ---------------------------
@attrs.define
class OpenAIChat:
    client: Any
    model: str
    history: list[dict[str, Any]] = attrs.field(factory=list)
    tools: list[dict[str, Any]] = attrs.field(factory=list)

    def ask(self, prompt: str, *, tools: bool) -> Turn:
        if tools:
            self.tools = [
                {
                    "type": "function",
                    "function": {"name": "get_weather", "description": DESCRIPTION, "parameters": SCHEMA},
                }
            ]
        self.history.append({"role": "user", "content": prompt})
        return self._turn()

    def answer(self, turn: Turn, result: str) -> Turn:
        self.history += [{"role": "tool", "tool_call_id": call_id, "content": result} for call_id, _, _ in turn.calls]
        return self._turn()

    def _turn(self) -> Turn:
        extra = {"tools": self.tools} if self.tools else {}
        chunks = list(
            self.client.chat.completions.create(
                model=self.model,
                messages=self.history,
                stream=True,
                stream_options={"include_usage": True},
                **extra,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        calls = [
            (call["id"], call["name"], orjson.loads(call["arguments"] or "{}"))
            for _, call in sorted(stream_tool_calls(chunks).items())
        ]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        [usage] = [c.usage for c in chunks if c.usage is not None]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": orjson.dumps(a).decode()}}
                for i, n, a in calls
            ]
        self.history.append(message)
        return Turn(text, calls, (usage.prompt_tokens, usage.completion_tokens), finish[-1])


@attrs.define
class AnthropicMessages:
    client: Any
    model: str
    history: list[dict[str, Any]] = attrs.field(factory=list)
    tools: list[dict[str, Any]] = attrs.field(factory=list)

    def ask(self, prompt: str, *, tools: bool) -> Turn:
        if tools:
            self.tools = [{"name": "get_weather", "description": DESCRIPTION, "input_schema": SCHEMA}]
        self.history.append({"role": "user", "content": prompt})
        return self._turn()

    def answer(self, turn: Turn, result: str) -> Turn:
        blocks = [{"type": "tool_result", "tool_use_id": i, "content": result} for i, _, _ in turn.calls]
        self.history.append({"role": "user", "content": blocks})
        return self._turn()

    def _turn(self) -> Turn:
        extra = {"tools": self.tools} if self.tools else {}
        with self.client.messages.stream(model=self.model, max_tokens=512, messages=self.history, **extra) as stream:
            final = stream.get_final_message()
        text = "".join(b.text for b in final.content if b.type == "text")
        calls = [(b.id, b.name, dict(b.input)) for b in final.content if b.type == "tool_use"]
        self.history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]})
        return Turn(text, calls, (final.usage.input_tokens, final.usage.output_tokens), str(final.stop_reason))


@attrs.define
class Responses:
    client: Any
    model: str
    history: list[dict[str, Any]] = attrs.field(factory=list)
    tools: list[dict[str, Any]] = attrs.field(factory=list)

    def ask(self, prompt: str, *, tools: bool) -> Turn:
        if tools:
            self.tools = [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": DESCRIPTION,
                    "parameters": SCHEMA,
                    "strict": False,
                }
            ]
        self.history.append({"type": "message", "role": "user", "content": prompt})
        return self._turn()

    def answer(self, turn: Turn, result: str) -> Turn:
        self.history += [{"type": "function_call_output", "call_id": i, "output": result} for i, _, _ in turn.calls]
        return self._turn()

    def _turn(self) -> Turn:
        extra = {"tools": self.tools} if self.tools else {}
        events = list(
            self.client.responses.create(model=self.model, input=self.history, stream=True, store=False, **extra)
        )
        assert events[0].type == "response.created", [e.type for e in events]
        assert [e.sequence_number for e in events] == list(range(len(events)))
        terminal = events[-1]
        assert terminal.type == "response.completed", [e.type for e in events]
        response = terminal.response
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == response.output_text
        calls = [
            (item.call_id, item.name, orjson.loads(item.arguments or "{}"))
            for item in response.output
            if item.type == "function_call"
        ]
        for item in response.output:
            if item.type == "message":
                self.history.append({"type": "message", "role": "assistant", "content": response.output_text})
            elif item.type == "function_call":
                self.history.append(
                    {"type": "function_call", "call_id": item.call_id, "name": item.name, "arguments": item.arguments}
                )
        usage = response.usage
        assert usage is not None and usage.total_tokens == usage.input_tokens + usage.output_tokens
        return Turn(text, calls, (usage.input_tokens, usage.output_tokens), str(response.status))


@attrs.define
class Gemini:
    client: Any
    model: str
    history: list[Any] = attrs.field(factory=list)
    config: Any = None

    def ask(self, prompt: str, *, tools: bool) -> Turn:
        from google.genai import types

        declaration = types.FunctionDeclaration(
            name="get_weather", description=DESCRIPTION, parameters_json_schema=SCHEMA
        )
        self.config = types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[declaration])] if tools else None,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        self.history.append(types.Content(role="user", parts=[types.Part(text=prompt)]))
        return self._turn()

    def answer(self, turn: Turn, result: str) -> Turn:
        from google.genai import types

        parts = [
            types.Part(function_response=types.FunctionResponse(id=i, name=n, response={"result": result}))
            for i, n, _ in turn.calls
        ]
        self.history.append(types.Content(role="user", parts=parts))
        return self._turn()

    def _turn(self) -> Turn:
        from google.genai import types

        chunks = list(
            self.client.models.generate_content_stream(model=self.model, contents=self.history, config=self.config)
        )
        parts = [p for c in chunks if c.candidates for p in (c.candidates[0].content.parts or [])]
        text = "".join(p.text for p in parts if p.text and not p.thought)
        calls = [
            (p.function_call.id, p.function_call.name, dict(p.function_call.args or {}))
            for p in parts
            if p.function_call
        ]
        finish = [
            str(c.candidates[0].finish_reason.value) for c in chunks if c.candidates and c.candidates[0].finish_reason
        ]
        usage = chunks[-1].usage_metadata
        assert usage is not None, chunks[-1]
        self.history.append(types.Content(role="model", parts=parts))
        return Turn(text, calls, (usage.prompt_token_count or 0, usage.candidates_token_count or 0), finish[-1])


def _driver(matrix: Matrix, client: str, key: str) -> Driver:
    if client == "openai_chat":
        return OpenAIChat(matrix.openai(key), "matrix-model")
    if client == "anthropic":
        return AnthropicMessages(matrix.anthropic(key), "claude-sonnet-4-5")
    if client == "responses":
        return Responses(matrix.openai(key), "gpt-5.1-codex")
    return Gemini(matrix.genai(key), "gemini-2.5-flash")


FINISH = {
    "openai_chat": ("stop", "tool_calls"),
    "anthropic": ("end_turn", "tool_use"),
    "responses": ("completed", "completed"),
    "gemini": ("STOP", "STOP"),
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    yield from start_matrix(tmp_path_factory.mktemp("dialect-matrix"))


@pytest.fixture(autouse=True)
def _clean(matrix: Matrix) -> None:
    matrix.reset()


def _assert_row(row: dict[str, Any], expected: tuple[int, int]) -> None:
    assert row["status"] == "success", row
    assert (row["input_tokens"], row["output_tokens"]) == expected, row


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("client", CLIENTS)
def test_matrix(matrix: Matrix, client: str, kind: str, scenario: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    chat = _driver(matrix, client, key)
    mock = kind == "mock"
    text_finish, call_finish = FINISH[client]

    if scenario == "streamed_text":
        answer = f"Hello from {kind}, streamed."
        script_stream(matrix, kind, text=answer, usage=TEXT_USAGE)
        turn = chat.ask(TEXT_PROMPT, tools=False)
        expected = f"Echo: {TEXT_PROMPT}" if mock else answer
        assert (turn.text, turn.calls, turn.finish) == (expected, [], text_finish)
        usage = (turn.usage[0], len(expected.split())) if mock else TEXT_USAGE
        assert turn.usage == usage
        _assert_row(matrix.usage_row(key_id), usage)
        return

    script_stream(matrix, kind, calls=(PARIS,), usage=CALL_USAGE)
    first = chat.ask(TOOL_PROMPT, tools=True)
    [(call_id, name, args)] = first.calls
    assert (name, args) == ("get_weather", {} if mock else PARIS.args)
    assert first.text == ""
    assert first.finish == call_finish
    if client != "gemini":
        assert call_id, first  # Gemini clients may get calls without ids; every other dialect needs one
    if not mock and client != "gemini" and kind in ("openai", "copilot", "anthropic"):
        assert call_id == PARIS.id  # the upstream's id reaches the client
    first_usage = (first.usage[0], 1) if mock else CALL_USAGE
    assert first.usage == first_usage
    if scenario == "streamed_tool_call":
        _assert_row(matrix.usage_row(key_id), first_usage)
        return

    final_text = "It is sunny in Paris."
    script_stream(matrix, kind, text=final_text, usage=LOOP_USAGE)
    second = chat.answer(first, RESULT)
    if mock:
        assert second.text.startswith("Echo: ") and RESULT in second.text, second
        second_usage = (second.usage[0], len(second.text.split()))
    else:
        assert second.text == final_text
        second_usage = LOOP_USAGE
        body = matrix.upstream_body(kind)
        [(replayed_id, replayed_name, replayed_args)] = tool_calls_sent(kind, body)
        assert (replayed_name, replayed_args) == ("get_weather", PARIS.args)
        [(result_ref, result_text)] = tool_results_sent(kind, body)
        assert RESULT in result_text
        if kind in ("google_ai_studio", "antigravity"):
            assert result_ref == "get_weather"  # functionResponse pairs by name
        else:
            assert result_ref == replayed_id, body  # the result answers the replayed call
    assert second.finish == text_finish
    assert second.usage == second_usage
    rows = matrix.usage_rows(key_id, 2)
    _assert_row(rows[0], first_usage)
    _assert_row(rows[1], second_usage)
