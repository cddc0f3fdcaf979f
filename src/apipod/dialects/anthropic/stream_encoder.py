"""Client side: canonical stream events to Anthropic SSE frames (docs/protocols/translation.md §8.2).

A small state machine keeps Anthropic's strict sequence: ``message_start``; content blocks one at a time with
contiguous indices from 0; ``message_delta`` with the stop reason and full usage; ``message_stop``. Delta
frames, the hot path, are one prefix built when the block opens plus the JSON-escaped text.
"""

from __future__ import annotations

from typing import Any

import orjson

from apipod.dialects.anthropic._convert import stop_reason_name, usage_to_wire
from apipod.domain.chat import Usage
from apipod.domain.stream import (
    BlockStopped,
    Finished,
    MessageStarted,
    RedactedThinking,
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

PING_FRAME = b'event: ping\ndata: {"type":"ping"}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_DELTA_TAIL = b"}}\n\n"
_ERROR_TYPES = {"overloaded": "overloaded_error", "rate_limited": "rate_limit_error"}
_NONE, _TEXT, _THINKING = -1, -2, -3  # open block kinds; non-negative values are tool keys


def _frame(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _delta_prefix(index: int, delta_type: str, field: str) -> bytes:
    return _DELTA_HEAD + b'%d,"delta":{"type":"%s","%s":' % (index, delta_type.encode(), field.encode())


class StreamEncoder:
    """Anthropic SSE for one answer. ``created`` and ``include_usage`` exist for parity with the OpenAI
    encoder: Anthropic always reports usage and has no creation time."""

    def __init__(self, *, model: str, message_id: str, created: int = 0, include_usage: bool = True) -> None:
        self._model = model
        self._message_id = message_id
        self._started = False
        self._done = False
        self._index = 0  # index of the open block, or of the next one when none is open
        self._open = _NONE
        self._prefix = b""
        self._pending_signature: str | None = None
        self._saw_tool_use = False
        self._relayed = False
        self._usage = Usage()

    @property
    def done(self) -> bool:
        """True once the terminal frames (``message_stop`` or ``error``) were produced."""
        return self._done

    def ping(self) -> list[bytes]:
        """A keep-alive frame for long silences (thinking); nothing before ``message_start`` or after the end."""
        return [PING_FRAME] if self._started and not self._done else []

    def encode(self, event: StreamEvent) -> list[bytes]:
        if type(event) is TextDelta and self._open == _TEXT and not self._done:
            # PERF: most events of a translated answer, text in the open text block; its frame in one join
            return [b"".join((self._prefix, orjson.dumps(event.text), _DELTA_TAIL))] if event.text else []
        if self._done:
            return []
        if self._relayed:
            # the upstream's own stream (dialects/anthropic/stream_relay.py): its frames, and apipod's errors
            if type(event) is Relayed:
                return [event.data]
            return self._fail([], event.message, kind=event.kind) if isinstance(event, StreamFailed) else []
        if isinstance(event, MessageStarted) and event.relayed:
            self._relayed = True
            self._started = True  # keep-alive pings may go out between relayed frames
            return []
        out: list[bytes] = []
        if isinstance(event, TextDelta):
            if event.text:
                if self._open != _TEXT:
                    self._open_block(out, _TEXT, {"type": "text", "text": ""}, "text_delta", "text")
                out.append(self._prefix + orjson.dumps(event.text) + _DELTA_TAIL)
        elif isinstance(event, ThinkingDelta):
            if event.text:
                if self._open != _THINKING:
                    self._open_thinking(out)
                out.append(self._prefix + orjson.dumps(event.text) + _DELTA_TAIL)
        elif isinstance(event, ToolCallDelta):
            if event.fragment:
                if event.key != self._open:
                    return self._fail(out, "the upstream interleaved the arguments of parallel tool calls")
                out.append(self._prefix + orjson.dumps(event.fragment) + _DELTA_TAIL)
        elif isinstance(event, ToolCallStarted):
            self._saw_tool_use = True
            block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            self._open_block(out, event.key, block, "input_json_delta", "partial_json")
        elif isinstance(event, ThinkingSignature):
            if self._open != _THINKING:
                self._open_thinking(out)  # give the signature a home (§8.2 rule 3)
            self._pending_signature = event.signature
        elif isinstance(event, BlockStopped):
            self._close(out)
        elif isinstance(event, UsageReported):
            self._usage = self._usage.merged(event.usage)
        elif isinstance(event, MessageStarted):
            self._usage = self._usage.merged(event.usage)
            self._start(out)
        elif isinstance(event, RedactedThinking):
            self._open_block(out, _THINKING, {"type": "redacted_thinking", "data": event.data}, "", "")
            self._close(out)
        elif isinstance(event, Finished):
            self._finish(out, event)
        elif isinstance(event, StreamFailed):
            return self._fail(out, event.message, kind=event.kind)
        return out

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_wire(self._usage),
        }
        out.append(_frame("message_start", {"type": "message_start", "message": message}))

    def _open_block(self, out: list[bytes], kind: int, block: dict[str, Any], delta_type: str, field: str) -> None:
        self._start(out)
        self._close(out)
        out.append(
            _frame("content_block_start", {"type": "content_block_start", "index": self._index, "content_block": block})
        )
        self._open = kind
        self._prefix = _delta_prefix(self._index, delta_type, field) if delta_type else b""

    def _open_thinking(self, out: list[bytes]) -> None:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        self._open_block(out, _THINKING, block, "thinking_delta", "thinking")

    def _close(self, out: list[bytes]) -> None:
        if self._open == _NONE:
            return
        if self._pending_signature is not None:  # sent once, just before the thinking block's stop
            prefix = _delta_prefix(self._index, "signature_delta", "signature")
            out.append(prefix + orjson.dumps(self._pending_signature) + _DELTA_TAIL)
            self._pending_signature = None
        out.append(_frame("content_block_stop", {"type": "content_block_stop", "index": self._index}))
        self._index += 1
        self._open = _NONE

    def _finish(self, out: list[bytes], event: Finished) -> None:
        self._start(out)
        self._close(out)
        reason = stop_reason_name(event.reason, saw_tool_use=self._saw_tool_use)
        delta = {"stop_reason": reason, "stop_sequence": event.stop_sequence if reason == "stop_sequence" else None}
        out.append(
            _frame("message_delta", {"type": "message_delta", "delta": delta, "usage": usage_to_wire(self._usage)})
        )
        out.append(_MESSAGE_STOP)
        self._done = True

    def _fail(self, out: list[bytes], message: str, *, kind: str = "upstream") -> list[bytes]:
        """An ``error`` frame and nothing after it; open blocks stay unclosed, as Anthropic does."""
        error = {"type": _ERROR_TYPES.get(kind, "api_error"), "message": message}
        out.append(_frame("error", {"type": "error", "error": error}))
        self._done = True
        return out
