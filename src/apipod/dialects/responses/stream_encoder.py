"""Canonical stream events -> Responses SSE frames (docs/protocols/openai-responses.md §6).

Order (§6.3): ``response.created``, ``response.in_progress``, then one output item at a time (``added``, its
content events, ``done`` with the complete item), then exactly one of ``response.completed`` /
``response.incomplete`` / ``response.failed`` carrying every item and the usage. ``sequence_number`` counts
every frame from 0, keep-alives included.

A custom (free-form) tool's canonical call streams JSON fragments of ``{"input": "..."}``: they are buffered
and the unwrapped text is sent at the item's end, as one delta and its ``done``.

PERF: each frame is one ``orjson.dumps`` of its own fields behind a preformatted ``event:``/``type`` prefix;
text deltas, the hottest frames, dump only the text behind a per-item prefix. The in-progress Response object
(which echoes the request's tools) is serialised once and reused by the keep-alives.
"""

from __future__ import annotations

from typing import Any

import orjson

from apipod.dialects.responses.output_items import (
    Envelope,
    call_item,
    incomplete_reason,
    item_id,
    message_item,
    reasoning_item,
    wants_encrypted_content,
)
from apipod.dialects.responses.reasoning_tags import tag_redacted, tag_signature
from apipod.dialects.responses.tool_names import ClientTool, ToolNames
from apipod.domain.chat import Usage
from apipod.domain.stream import (
    BlockStopped,
    FailureKind,
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

_PREFIXES: dict[str, bytes] = {}


def _prefix(kind: str) -> bytes:
    """``event: <kind>`` and the data object's opening, up to the sequence number's value."""
    prefix = _PREFIXES.get(kind)
    if prefix is None:
        prefix = _PREFIXES[kind] = (
            b"event: " + kind.encode() + b'\ndata: {"type":"' + kind.encode() + b'","sequence_number":'
        )
    return prefix


_TEXT_DELTA = _prefix("response.output_text.delta")
_SUMMARY_DELTA = _prefix("response.reasoning_summary_text.delta")
_ARGUMENTS_DELTA = _prefix("response.function_call_arguments.delta")
_END = b"}\n\n"

# StreamFailed.kind -> ``response.error.code`` (Codex retries ``server_error`` and waits on rate limits).
_FAILURE_CODES: dict[FailureKind, str] = {
    FailureKind.RATE_LIMITED: "rate_limit_exceeded",
    FailureKind.OVERLOADED: "server_error",
    FailureKind.UPSTREAM: "server_error",
    FailureKind.INTERNAL: "server_error",
}
_RETRY_LATER = "Please try again later."

_MESSAGE, _REASONING, _CALL = 0, 1, 2


class _Item:
    """The output item being streamed."""

    __slots__ = ("call_id", "head", "id", "index", "key", "kind", "part_open", "signature", "texts", "tool")

    def __init__(self, kind: int, item_id: str, index: int) -> None:
        self.kind = kind
        self.id = item_id
        self.index = index
        # ``"item_id":...,"output_index":N`` of every content event of this item
        self.head = b',"item_id":' + orjson.dumps(item_id) + b',"output_index":' + str(index).encode()
        self.texts: list[str] = []
        self.part_open = False
        self.signature: str | None = None
        self.key = -1
        self.call_id = ""
        self.tool = ClientTool("")


class StreamEncoder:
    """Stateful encoder for one streamed answer. ``response_id`` is used as given (callers pass a ``resp_``
    id); ``model`` is the name the client asked for."""

    __slots__ = (
        "_current",
        "_done",
        "_encrypted",
        "_envelope",
        "_names",
        "_origin",
        "_output",
        "_pending",
        "_response",
        "_response_id",
        "_seq",
        "_usage",
    )

    def __init__(self, body: dict[str, Any], *, model: str, response_id: str, created: int) -> None:
        self._envelope = Envelope(body, model=model, response_id=response_id, created=created)
        self._response_id = response_id
        self._names = ToolNames(body.get("tools"))
        self._encrypted = wants_encrypted_content(body)
        self._seq = 0
        self._pending: bytes | None = None  # the in-progress Response object, once the stream has started
        self._done = False
        self._origin = ""
        self._usage = Usage()
        self._output: list[dict[str, Any]] = []
        self._current: _Item | None = None
        self._response: dict[str, Any] | None = None

    @property
    def response(self) -> dict[str, Any] | None:
        """The final Response object, once a terminal event has been encoded."""
        return self._response

    def keepalive(self) -> bytes:
        """A ``response.in_progress`` frame (Codex's idle timer ignores SSE comments); nothing once finished."""
        if self._done:
            return b""
        if self._pending is None:
            return b"".join(self._start())
        return self._lifecycle("response.in_progress", self._pending)

    def encode(self, event: StreamEvent) -> list[bytes]:
        if self._done:
            return []
        frames = self._start() if self._pending is None else []
        if isinstance(event, TextDelta):
            if event.text:
                self._text(event.text, frames)
        elif isinstance(event, ToolCallDelta):
            self._arguments(event, frames)
        elif isinstance(event, ThinkingDelta):
            if event.text:
                self._thinking(event.text, frames)
        elif isinstance(event, ToolCallStarted):
            self._tool_call(event, frames)
        elif isinstance(event, ThinkingSignature):
            if event.signature:
                self._signature(event.signature, frames)
        elif isinstance(event, RedactedThinking):
            self._redacted(event.data, frames)
        elif isinstance(event, BlockStopped):
            self._close(frames)
        elif isinstance(event, UsageReported):
            self._usage = self._usage.merged(event.usage)
        elif isinstance(event, MessageStarted):
            self._usage = self._usage.merged(event.usage)
            self._origin = event.origin or self._origin
        elif isinstance(event, Finished):
            self._close(frames)
            self._finish(event, frames)
        elif isinstance(event, StreamFailed):
            self._fail(event, frames)
        return frames

    # --- framing ----------------------------------------------------------------------------------

    def _next(self) -> bytes:
        seq = self._seq
        self._seq = seq + 1
        return str(seq).encode()

    def _frame(self, kind: str, fields: dict[str, Any]) -> bytes:
        """One event: ``fields`` (non-empty) dumped once, spliced after the type and sequence number."""
        return b"".join((_prefix(kind), self._next(), b",", orjson.dumps(fields)[1:], b"\n\n"))

    def _lifecycle(self, kind: str, response: bytes) -> bytes:
        return b"".join((_prefix(kind), self._next(), b',"response":', response, _END))

    def _start(self) -> list[bytes]:
        self._pending = pending = orjson.dumps(self._envelope.response("in_progress", []))
        return [self._lifecycle("response.created", pending), self._lifecycle("response.in_progress", pending)]

    # --- items ------------------------------------------------------------------------------------

    def _open(self, kind: int, prefix: str, frames: list[bytes]) -> _Item:
        self._close(frames)
        index = len(self._output)
        item = self._current = _Item(kind, item_id(prefix, self._response_id, index), index)
        return item

    def _added(self, item: _Item, wire: dict[str, Any], frames: list[bytes]) -> None:
        frames.append(self._frame("response.output_item.added", {"output_index": item.index, "item": wire}))

    def _text(self, text: str, frames: list[bytes]) -> None:
        item = self._current
        if item is None or item.kind != _MESSAGE:
            item = self._open(_MESSAGE, "msg", frames)
            self._added(item, message_item(item.id, "", "in_progress"), frames)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            fields = {"item_id": item.id, "output_index": item.index, "content_index": 0, "part": part}
            frames.append(self._frame("response.content_part.added", fields))
        item.texts.append(text)
        frames.append(
            b"".join(
                (
                    _TEXT_DELTA,
                    self._next(),
                    item.head,
                    b',"content_index":0,"delta":',
                    orjson.dumps(text),
                    b',"logprobs":[]}\n\n',
                )
            )
        )

    def _thinking(self, text: str, frames: list[bytes]) -> None:
        item = self._current
        if item is None or item.kind != _REASONING or item.signature is not None:
            item = self._open(_REASONING, "rs", frames)
            self._added(item, reasoning_item(item.id, [], None, "in_progress"), frames)
        if not item.part_open:
            item.part_open = True
            fields = {
                "item_id": item.id,
                "output_index": item.index,
                "summary_index": 0,
                "part": {"type": "summary_text", "text": ""},
            }
            frames.append(self._frame("response.reasoning_summary_part.added", fields))
        item.texts.append(text)
        frames.append(
            b"".join(
                (_SUMMARY_DELTA, self._next(), item.head, b',"summary_index":0,"delta":', orjson.dumps(text), _END)
            )
        )

    def _signature(self, signature: str, frames: list[bytes]) -> None:
        tagged = tag_signature(self._origin, signature)
        item = self._current
        if item is not None and item.kind == _REASONING and item.signature is None:
            item.signature = tagged
            return
        if not self._encrypted:
            return  # a reasoning item without text or payload would say nothing
        item = self._open(_REASONING, "rs", frames)
        item.signature = tagged
        self._added(item, reasoning_item(item.id, [], None, "in_progress"), frames)

    def _redacted(self, data: str, frames: list[bytes]) -> None:
        if not self._encrypted:
            return
        item = self._open(_REASONING, "rs", frames)
        item.signature = tag_redacted(self._origin, data)
        self._added(item, reasoning_item(item.id, [], None, "in_progress"), frames)
        self._close(frames)

    def _tool_call(self, event: ToolCallStarted, frames: list[bytes]) -> None:
        tool = self._names.resolve(event.name)
        item = self._open(_CALL, "ctc" if tool.custom else "fc", frames)
        item.key, item.call_id, item.tool = event.key, event.id, tool
        self._added(item, call_item(item.id, event.id, tool, "", "in_progress"), frames)

    def _arguments(self, event: ToolCallDelta, frames: list[bytes]) -> None:
        item = self._current
        if item is None or item.kind != _CALL or item.key != event.key or not event.fragment:
            return  # a fragment of a call already closed breaks the stream contract: nothing safe to do
        item.texts.append(event.fragment)
        if not item.tool.custom:
            fragment = orjson.dumps(event.fragment)
            frames.append(b"".join((_ARGUMENTS_DELTA, self._next(), item.head, b',"delta":', fragment, _END)))

    def _close(self, frames: list[bytes]) -> None:
        item = self._current
        if item is None:
            return
        self._current = None
        text = "".join(item.texts)
        if item.kind == _MESSAGE:
            wire = self._close_message(item, text, frames)
        elif item.kind == _REASONING:
            wire = self._close_reasoning(item, text, frames)
        else:
            wire = self._close_call(item, text, frames)
        self._output.append(wire)
        frames.append(self._frame("response.output_item.done", {"output_index": item.index, "item": wire}))

    def _close_message(self, item: _Item, text: str, frames: list[bytes]) -> dict[str, Any]:
        base = {"item_id": item.id, "output_index": item.index, "content_index": 0}
        frames.append(self._frame("response.output_text.done", {**base, "text": text, "logprobs": []}))
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        frames.append(self._frame("response.content_part.done", {**base, "part": part}))
        return message_item(item.id, text, "completed")

    def _close_reasoning(self, item: _Item, text: str, frames: list[bytes]) -> dict[str, Any]:
        if item.part_open:
            base = {"item_id": item.id, "output_index": item.index, "summary_index": 0}
            frames.append(self._frame("response.reasoning_summary_text.done", {**base, "text": text}))
            part = {"type": "summary_text", "text": text}
            frames.append(self._frame("response.reasoning_summary_part.done", {**base, "part": part}))
        encrypted = item.signature if self._encrypted else None
        return reasoning_item(item.id, [text] if text else [], encrypted, "completed")

    def _close_call(self, item: _Item, arguments: str, frames: list[bytes]) -> dict[str, Any]:
        if not item.tool.custom:
            arguments = arguments or "{}"
        wire = call_item(item.id, item.call_id, item.tool, arguments, "completed")
        base = {"item_id": item.id, "output_index": item.index}
        if item.tool.custom:
            text = wire["input"]
            if text:
                frames.append(self._frame("response.custom_tool_call_input.delta", {**base, "delta": text}))
            frames.append(self._frame("response.custom_tool_call_input.done", {**base, "input": text}))
        else:
            done = {**base, "name": wire["name"], "arguments": arguments}
            frames.append(self._frame("response.function_call_arguments.done", done))
        return wire

    # --- the end ----------------------------------------------------------------------------------

    def _finish(self, event: Finished, frames: list[bytes]) -> None:
        reason = incomplete_reason(event.reason)
        status = "completed" if reason is None else "incomplete"
        self._terminal(
            f"response.{status}", self._envelope.response(status, self._output, self._usage, incomplete=reason), frames
        )

    def _fail(self, event: StreamFailed, frames: list[bytes]) -> None:
        code = _FAILURE_CODES.get(event.kind, "server_error")
        message = event.message or "The upstream failed."
        if event.kind is FailureKind.RATE_LIMITED and _RETRY_LATER not in message:
            message = f"{message} {_RETRY_LATER}"
        error = {"code": code, "message": message}
        self._terminal(
            "response.failed", self._envelope.response("failed", self._output, self._usage, error=error), frames
        )

    def _terminal(self, kind: str, response: dict[str, Any], frames: list[bytes]) -> None:
        self._done = True
        self._response = response
        frames.append(self._lifecycle(kind, orjson.dumps(response)))
