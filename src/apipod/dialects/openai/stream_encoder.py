"""Canonical stream events -> ``chat.completion.chunk`` SSE frames for OpenAI clients
(docs/protocols/translation.md §8.3).

Every chunk shares ``id``, ``created`` and ``model``, so their JSON prefix is encoded once; each event then
costs one ``orjson.dumps`` of its own payload and a few byte concatenations.
"""

from __future__ import annotations

from typing import Any

import orjson

from apipod.dialects.openai.mapping import finish_to_wire, signature_field, usage_to_wire
from apipod.domain.chat import Usage
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    Relayed,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)

DONE = b"data: [DONE]\n\n"
_ROLE_DELTA = b'{"role":"assistant","content":""}'
_CHOICE_OPEN = b'[{"index":0,"delta":'
_CHOICE_CLOSE = b',"finish_reason":null}]}\n\n'
_TEXT_TAIL = b"}" + _CHOICE_CLOSE

# StreamFailed.kind -> OpenAI error (type, code).
_FAILURES: dict[str, tuple[str, str | None]] = {
    "rate_limited": ("rate_limit_error", "rate_limit_exceeded"),
    "overloaded": ("server_error", "overloaded"),
    "upstream": ("server_error", "upstream_error"),
}


class StreamEncoder:
    """Stateful encoder for one streamed answer. ``message_id`` is used as given (callers pass a
    ``chatcmpl-`` id). Role chunk first; after ``Finished``: the finish chunk, the usage chunk when
    ``include_usage``, then ``[DONE]``. After ``StreamFailed``: the error frame and nothing else.

    A relayed stream (``MessageStarted.relayed``, dialects/openai/stream_relay.py) is the upstream's own chunks:
    ``Relayed`` frames are written as they are, and of the rest only a ``StreamFailed`` (apipod's own: a cut-off
    stream, a shutdown) says anything."""

    __slots__ = (
        "_done",
        "_head",
        "_include_usage",
        "_relayed",
        "_role_sent",
        "_text_head",
        "_tool_index",
        "_usage",
    )

    def __init__(self, *, model: str, message_id: str, created: int, include_usage: bool = True) -> None:
        self._head = b"".join(
            (
                b'data: {"id":',
                orjson.dumps(message_id),
                b',"object":"chat.completion.chunk","created":',
                str(int(created)).encode(),
                b',"model":',
                orjson.dumps(model),
                b',"choices":',
            )
        )
        self._text_head = self._head + _CHOICE_OPEN + b'{"content":'
        self._include_usage = include_usage
        self._role_sent = False
        self._done = False
        self._relayed = False
        self._tool_index: dict[int, int] = {}  # event key -> OpenAI index (ordinal of the call)
        self._usage = Usage()

    def encode(self, event: StreamEvent) -> list[bytes]:
        if type(event) is TextDelta and self._role_sent and not self._done and not self._relayed:
            # PERF: most events of a translated answer; its frame in one join
            return [b"".join((self._text_head, orjson.dumps(event.text), _TEXT_TAIL))] if event.text else []
        if self._done:
            return []
        if type(event) is Relayed:
            return [event.data]
        if isinstance(event, StreamFailed):
            self._done = True
            return [self._error(event)]
        if self._relayed:
            return []
        if isinstance(event, MessageStarted) and event.relayed:
            self._relayed = True
            return []
        frames: list[bytes] = []
        if not self._role_sent:
            self._role_sent = True
            frames.append(self._chunk(_ROLE_DELTA))
        if isinstance(event, TextDelta):
            if event.text:
                frames.append(self._chunk(b'{"content":' + orjson.dumps(event.text) + b"}"))
        elif isinstance(event, ToolCallDelta):
            if event.fragment:
                frames.append(self._tool_delta(event))
        elif isinstance(event, ThinkingDelta):
            if event.text:
                frames.append(self._chunk(b'{"reasoning_content":' + orjson.dumps(event.text) + b"}"))
        elif isinstance(event, ThinkingSignature):
            if event.signature:
                frames.append(self._chunk(b'{"reasoning_opaque":' + orjson.dumps(event.signature) + b"}"))
        elif isinstance(event, ToolCallStarted):
            frames.append(self._tool_start(event))
        elif isinstance(event, UsageReported | MessageStarted):
            self._usage = self._usage.merged(event.usage)
        elif isinstance(event, Finished):
            self._done = True
            frames.extend(self._finish(event))
        # RedactedThinking, BlockStopped: nothing to say in this dialect.
        return frames

    def _chunk(self, delta: bytes) -> bytes:
        return b"".join((self._head, _CHOICE_OPEN, delta, _CHOICE_CLOSE))

    def _index(self, key: int) -> int:
        index = self._tool_index.get(key)
        if index is None:
            index = self._tool_index[key] = len(self._tool_index)
        return index

    def _tool_start(self, event: ToolCallStarted) -> bytes:
        call: dict[str, Any] = {
            "index": self._index(event.key),
            "id": event.id,
            "type": "function",
            "function": {"name": event.name, "arguments": ""},
        }
        if event.signature:
            call["extra_content"] = signature_field(event.signature)
        return self._chunk(b'{"tool_calls":[' + orjson.dumps(call) + b"]}")

    def _tool_delta(self, event: ToolCallDelta) -> bytes:
        index = str(self._index(event.key)).encode()
        fragment = orjson.dumps(event.fragment)
        return self._chunk(b'{"tool_calls":[{"index":' + index + b',"function":{"arguments":' + fragment + b"}}]}")

    def _finish(self, event: Finished) -> list[bytes]:
        reason = finish_to_wire(event.reason, saw_tool_call=bool(self._tool_index))
        frames = [
            b"".join((self._head, _CHOICE_OPEN, b'{},"finish_reason":', orjson.dumps(reason), b"}]}\n\n")),
        ]
        if self._include_usage:
            frames.append(b"".join((self._head, b'[],"usage":', orjson.dumps(usage_to_wire(self._usage)), b"}\n\n")))
        frames.append(DONE)
        return frames

    @staticmethod
    def _error(event: StreamFailed) -> bytes:
        kind, code = _FAILURES.get(event.kind, ("server_error", None))
        error = {"error": {"message": event.message, "type": kind, "param": None, "code": code}}
        return b"data: " + orjson.dumps(error) + b"\n\n"
