"""An OpenAI-compatible upstream's SSE chunks -> canonical stream events (docs/protocols/translation.md §8.1).

Tolerates the quirks of docs/protocols/openai-chat.md §6.5: leading ``choices: []`` chunks without usage (Copilot's
``prompt_filter_results``) are skipped; usage may ride on the finish chunk or come alone; a new ``id`` on
an index already in use opens a new call; ``finish_reason`` is only remembered, and the stream finishes on
``[DONE]`` or at end of body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects._text_shape import PROBE, Shape, probe, shape_around, text_in
from apipod.dialects.openai.mapping import finish_from_wire, signature_of, usage_from_wire
from apipod.dialects.openai.response import reasoning_text
from apipod.dialects.upstream_faults import stream_failure
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)

_DONE = b"[DONE]"
_TEXT_AT = b'"delta":{"content":'
"""Where a text-only chunk's text starts, when the upstream writes JSON without spaces (OpenAI does)."""


class StreamDecoder:
    """Decodes one upstream stream. Tool-call keys are ordinals of the calls in this answer."""

    __slots__ = ("_calls", "_count", "_done", "_finish", "_shape", "_started")

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._finish: object = None  # the upstream's finish_reason, applied at the end
        self._calls: dict[int, tuple[int, str]] = {}  # wire index -> (key, id) of the call open there
        self._count = 0  # calls started so far: the next call's key
        self._shape: Shape | None = None  # see _learn

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
        """One SSE event (``event`` name is unused by this dialect). ``[DONE]`` finishes the stream."""
        if self._done:
            return []
        data = data.strip()
        if not data:
            return []
        shape = self._shape
        if shape is not None:
            text = text_in(shape, data)
            if text is not None:
                return [TextDelta(text)] if text else []
        if data == _DONE:
            return self._end()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._done = True
            return [StreamFailed("upstream", "The upstream sent a malformed stream chunk.")]
        if not isinstance(chunk, dict):
            return []
        error = chunk.get("error")
        if error:
            self._done = True
            return [stream_error(error)]
        events = self._chunk(chunk)
        if shape is None and len(events) == 1 and type(events[0]) is TextDelta and _text_only(chunk) is not None:
            self._learn(data, events[0].text)
        return events

    def close(self) -> list[StreamEvent]:
        """End of body. Without ``[DONE]`` a stream that gave a finish reason is complete (some upstreams
        never send ``[DONE]``); one that gave none was cut off."""
        if self._done:
            return []
        if self._finish is None:
            self._done = True
            return [StreamFailed("upstream", "The upstream stream ended before the answer was finished.")]
        return self._end()

    def _chunk(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        choices = chunk.get("choices")
        choice = choices[0] if type(choices) is list and choices else None
        usage = chunk.get("usage")
        if type(usage) is not dict:
            usage = None
        if self._started and usage is None and type(choice) is dict and choice.get("finish_reason") is None:
            # PERF: most chunks of an answer carry text and nothing else (``role`` at most): one lookup each
            delta = choice.get("delta")
            if type(delta) is dict and (len(delta) == 1 or (len(delta) == 2 and "role" in delta)):
                content = delta.get("content")
                if type(content) is str:
                    return [TextDelta(content)] if content else []
        events: list[StreamEvent] = []
        if not self._started:
            if choice is None and usage is None:
                return events  # Copilot's prompt_filter_results before the answer
            self._started = True
            chunk_id, model = chunk.get("id"), chunk.get("model")
            events.append(
                MessageStarted(
                    id=chunk_id if isinstance(chunk_id, str) else "", model=model if isinstance(model, str) else ""
                )
            )
        if type(choice) is dict:
            delta = choice.get("delta")
            if type(delta) is dict:
                self._delta(delta, events)
            reason = choice.get("finish_reason")
            if reason is not None:
                self._finish = reason
        if usage is not None:
            events.append(UsageReported(usage_from_wire(usage)))
        return events

    def _learn(self, data: bytes, text: str) -> None:
        """Learn the bytes around a text chunk's text (dialects/_text_shape.py), when ``data`` is a chunk of
        text and nothing else: one choice, whose delta is its content. A text chunk's events depend on nothing
        earlier in the stream (once it started, which it has), so the shape is kept to the end."""
        shape = shape_around(data, _TEXT_AT, text)
        if shape is not None and _text_only(probe(shape)) == PROBE:
            self._shape = shape

    def _delta(self, delta: Mapping[str, Any], events: list[StreamEvent]) -> None:
        thinking = reasoning_text(delta)
        if thinking:
            events.append(ThinkingDelta(thinking))
        opaque = delta.get("reasoning_opaque")
        if isinstance(opaque, str) and opaque:
            events.append(ThinkingSignature(opaque))
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(TextDelta(content))
        refusal = delta.get("refusal")
        if isinstance(refusal, str) and refusal:
            events.append(TextDelta(refusal))
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, fragment in enumerate(calls):
                if type(fragment) is dict:
                    self._tool_fragment(fragment, position, events)

    def _tool_fragment(self, fragment: Mapping[str, Any], position: int, events: list[StreamEvent]) -> None:
        index = fragment.get("index")
        if not isinstance(index, int):
            index = position
        call_id = fragment.get("id")
        call_id = call_id if isinstance(call_id, str) and call_id else None
        function = fragment.get("function")
        function = function if type(function) is dict else {}
        open_call = self._calls.get(index)
        if open_call is None or (call_id is not None and call_id != open_call[1]):
            key = self._count
            self._count += 1
            name = function.get("name")
            # NOTE: OpenAI always sends an id; the fallback only keeps keys apart for odd upstreams.
            call_id = call_id or f"call_{key}"
            self._calls[index] = (key, call_id)
            events.append(
                ToolCallStarted(
                    key=key, id=call_id, name=name if isinstance(name, str) else "", signature=signature_of(fragment)
                )
            )
        else:
            key = open_call[0]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            events.append(ToolCallDelta(key, arguments))

    def _end(self) -> list[StreamEvent]:
        self._done = True
        events: list[StreamEvent] = [] if self._started else [MessageStarted()]
        events.append(Finished(finish_from_wire(self._finish, saw_tool_call=self._count > 0)))
        return events


def _text_only(chunk: object) -> object:
    """The content of a chunk of text and nothing else (one choice, whose delta is its content); else None."""
    if type(chunk) is not dict or chunk.get("usage") is not None:
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1 or type(choices[0]) is not dict:
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if choice.get("finish_reason") is not None or type(delta) is not dict or len(delta) != 1:
        return None
    return delta.get("content")


def stream_error(error: object) -> StreamFailed:
    """An in-stream ``{"error": ...}`` (same shape as a non-stream error body), under the shared policy."""
    if not isinstance(error, Mapping):
        return stream_failure(None, message=str(error))
    codes = [str(error.get(name) or "") for name in ("type", "code")]
    message = error.get("message")
    return stream_failure(None, codes=codes, message=message if isinstance(message, str) else "")
