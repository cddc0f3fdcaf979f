"""Upstream side: an Anthropic SSE stream to canonical stream events
(docs/protocols/translation.md §8.1 "From AN SSE")."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from apipod.dialects._counts import token_count
from apipod.dialects._text_shape import PROBE, Shape, probe, shape_around, text_in
from apipod.dialects.anthropic._convert import finish_reason
from apipod.dialects.upstream_faults import stream_failure
from apipod.domain.chat import Usage
from apipod.domain.stream import (
    BlockStopped,
    Finished,
    MessageStarted,
    RedactedThinking,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)

_IGNORED = -1  # block kinds apipod does not model (server tools, newer features): deltas and stop dropped
_TEXT, _THINKING, _REDACTED = -2, -3, -4  # non-negative values are tool keys


def _int(usage: Mapping[str, Any], key: str) -> int:
    return token_count(usage.get(key))


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


_SHAPED: dict[type, tuple[bytes, Callable[[Any], str]]] = {
    TextDelta: (b"text", lambda event: event.text),
    ThinkingDelta: (b"thinking", lambda event: event.text),
    ToolCallDelta: (b"partial_json", lambda event: event.fragment),
}
"""The deltas read by their shape: the wire field their string is in, and the string."""


def _maker(event: StreamEvent) -> Callable[[str], StreamEvent]:
    """What makes the same kind of delta (the same tool call's) from another string."""
    if isinstance(event, ToolCallDelta):
        return functools.partial(ToolCallDelta, event.key)
    return type(event)


class StreamDecoder:
    """Feed one SSE event at a time. Usage is Anthropic's running total (docs/protocols/anthropic-messages.md §6.3):
    counts are merged so that a ``message_delta`` carrying only ``output_tokens`` never erases the input side from
    ``message_start``."""

    def __init__(self) -> None:
        self._started = False
        self._done = False
        self._blocks: dict[int, int] = {}  # content block index -> kind, or tool key when >= 0
        self._tool_count = 0
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._input = self._cache_read = self._cache_creation = self._output = self._reasoning = 0
        self._shape: Shape | None = None  # see _learn
        self._shaped: Callable[[str], StreamEvent] = TextDelta  # the event a shaped delta's string makes

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
        if self._done or not data.strip():
            return []
        if self._shape is not None:
            value = text_in(self._shape, data)
            if value is not None:
                return [self._shaped(value)] if value else []
            self._shape = None  # an event parsed whole may change what the next deltas mean: learnt anew
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            if event == "ping":
                return []
            return self._fail("upstream", "the upstream sent an unreadable stream event")
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or event
        if kind == "content_block_delta":
            events = self._delta(payload)
            if len(events) == 1 and type(events[0]) in _SHAPED:
                self._learn(data, payload, events[0])
            return events
        if kind == "content_block_start":
            return self._start_block(payload)
        if kind == "content_block_stop":
            index = payload.get("index")
            block = self._blocks.pop(index, _IGNORED) if isinstance(index, int) else _IGNORED
            return [] if block == _IGNORED else [BlockStopped()]
        if kind == "message_start":
            return self._message_start(payload)
        if kind == "message_delta":
            return self._message_delta(payload)
        if kind == "message_stop":
            self._done = True
            return [*self._begin(), self._finished()]
        if kind == "error":
            return self._error(payload)
        return []  # ping and event types newer than this codec

    def close(self) -> list[StreamEvent]:
        """End of body. A stream cut before ``message_stop`` finishes only if the stop reason had arrived."""
        if self._done:
            return []
        if self._stop_reason is None:
            return self._fail("upstream", "the upstream stream ended before the message was complete")
        self._done = True
        return [self._finished()]

    def _begin(self) -> list[StreamEvent]:
        if self._started:
            return []
        self._started = True
        return [MessageStarted()]

    def _usage(self) -> Usage:
        return Usage(
            input_tokens=self._input + self._cache_read + self._cache_creation,
            output_tokens=self._output,
            cached_input_tokens=self._cache_read,
            cache_creation_input_tokens=self._cache_creation,
            reasoning_tokens=self._reasoning,
        )

    def _merge_usage(self, usage: object) -> bool:
        if not isinstance(usage, Mapping):
            return False
        self._input = _int(usage, "input_tokens") or self._input
        self._cache_read = _int(usage, "cache_read_input_tokens") or self._cache_read
        self._cache_creation = _int(usage, "cache_creation_input_tokens") or self._cache_creation
        self._output = _int(usage, "output_tokens") or self._output
        details = usage.get("output_tokens_details")
        if isinstance(details, Mapping):
            self._reasoning = _int(details, "thinking_tokens") or self._reasoning
        return True

    def _finished(self) -> Finished:
        saw_tool_use = self._tool_count > 0
        return Finished(finish_reason(self._stop_reason, saw_tool_use=saw_tool_use), self._stop_sequence)

    def _fail(self, kind: str, message: str) -> list[StreamEvent]:
        self._done = True
        return [StreamFailed(kind, message)]

    def _message_start(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        message = payload.get("message")
        if not isinstance(message, Mapping):
            return self._begin()
        has_usage = self._merge_usage(message.get("usage"))
        if self._started:  # content arrived first; keep only the counts
            return [UsageReported(self._usage())] if has_usage else []
        self._started = True
        usage = self._usage()
        started = MessageStarted(_str(message.get("id")), _str(message.get("model")), usage)
        return [started, UsageReported(usage)] if has_usage else [started]

    def _start_block(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        index, block = payload.get("index"), payload.get("content_block")
        if not isinstance(index, int) or not isinstance(block, Mapping):
            return []
        out = self._begin()
        kind = block.get("type")
        if kind == "text":
            self._blocks[index] = _TEXT
            if text := _str(block.get("text")):
                out.append(TextDelta(text))
        elif kind == "thinking":
            self._blocks[index] = _THINKING
            if text := _str(block.get("thinking")):
                out.append(ThinkingDelta(text))
            if signature := _str(block.get("signature")):
                out.append(ThinkingSignature(signature))
        elif kind == "tool_use":
            key = self._tool_count
            self._tool_count += 1
            self._blocks[index] = key
            out.append(ToolCallStarted(key, _str(block.get("id")), _str(block.get("name"))))
            tool_input = block.get("input")
            if isinstance(tool_input, dict) and tool_input:
                out.append(ToolCallDelta(key, orjson.dumps(tool_input).decode()))
        elif kind == "redacted_thinking":
            self._blocks[index] = _REDACTED
            out.append(RedactedThinking(_str(block.get("data"))))
        else:
            self._blocks[index] = _IGNORED
        return out

    def _learn(self, data: bytes, payload: Mapping[str, Any], event: StreamEvent) -> None:
        """Learn the bytes around a delta's text (dialects/_text_shape.py). What a delta means depends on its
        block, which only events parsed whole open and close: the shape is dropped at the next one."""
        delta = payload["delta"]
        kind = delta["type"]
        field, text = _SHAPED[type(event)]
        shape = shape_around(data, b'"delta":{"type":"' + kind.encode() + b'","' + field + b'":', text(event))
        if shape is None:
            return
        seen = probe(shape)
        if (
            type(seen) is dict
            and seen.get("type") == "content_block_delta"
            and type(seen_delta := seen.get("delta")) is dict
            and seen_delta.get("type") == kind
            and seen_delta.get(field.decode()) == PROBE
        ):
            self._shape = shape
            self._shaped = _maker(event)

    def _delta(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        index, delta = payload.get("index"), payload.get("delta")
        block = self._blocks.get(index, _IGNORED) if isinstance(index, int) else _IGNORED
        if block == _IGNORED or not isinstance(delta, Mapping):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = _str(delta.get("text"))
            return [TextDelta(text)] if text else []
        if kind == "input_json_delta":
            fragment = _str(delta.get("partial_json"))
            return [ToolCallDelta(block, fragment)] if fragment and block >= 0 else []
        if kind == "thinking_delta":
            text = _str(delta.get("thinking"))
            return [ThinkingDelta(text)] if text else []
        if kind == "signature_delta":
            signature = _str(delta.get("signature"))
            return [ThinkingSignature(signature)] if signature else []
        return []  # citations_delta and newer delta kinds

    def _message_delta(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        out = self._begin()
        delta = payload.get("delta")
        if isinstance(delta, Mapping):
            if isinstance(reason := delta.get("stop_reason"), str):
                self._stop_reason = reason
            if isinstance(sequence := delta.get("stop_sequence"), str):
                self._stop_sequence = sequence
        if self._merge_usage(payload.get("usage")):
            out.append(UsageReported(self._usage()))
        return out

    def _error(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        error = payload.get("error")
        kind = message = ""
        if isinstance(error, Mapping):
            kind, message = _str(error.get("type")), _str(error.get("message"))
        failed = stream_failure(None, codes=(kind,), message=message)  # the same policy as an HTTP error
        return self._fail(failed.kind, failed.message)
