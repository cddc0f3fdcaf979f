"""Canonical stream events -> ``streamGenerateContent`` chunks for a Gemini client
(docs/protocols/gemini.md §4, docs/protocols/gemini-cli.md §5).

Each chunk is a whole ``GenerateContentResponse`` holding only its new part. A function call goes out whole, in
one chunk, once its arguments are complete (at the next event that is not one of its deltas). The last chunk
carries the finish reason and the final usage, with an empty text part as Google's own last chunk has; the
Gemini CLI treats a stream without a finish reason as broken.

Framing: ``?alt=sse`` gives ``data: <json>\\r\\n\\r\\n`` per chunk; without it the stream is one JSON array written
piece by piece (``[`` before the first chunk, ``,\\r\\n`` between chunks, ``]`` at the end). Every chunk shares
its candidate wrapper, ``modelVersion`` and ``responseId``, so that JSON is built once; an event then costs one
``orjson.dumps`` of its text and a few byte concatenations.
"""

from __future__ import annotations

import orjson

from apipod.dialects.gemini.client_errors import stream_error_frame
from apipod.dialects.gemini.client_response import call_part, finish_to_wire, usage_metadata
from apipod.domain.chat import Usage
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

_HEAD = b'{"candidates":[{"content":{"parts":['
_OPEN_TAIL = b'],"role":"model"},"index":0}],'
_LAST_PART = b'{"text":""}'
_SIGNED_EMPTY = b'{"text":"","thoughtSignature":'


class ClientStreamEncoder:
    """Stateful encoder for one streamed answer; ``encode`` returns the frames for one event (often none)."""

    __slots__ = ("_call", "_done", "_end", "_fragments", "_prefix", "_sse", "_tail", "_thinking", "_usage")

    def __init__(self, *, model: str, response_id: str, sse: bool) -> None:
        self._tail = b'"modelVersion":' + orjson.dumps(model) + b',"responseId":' + orjson.dumps(response_id) + b"}"
        self._end = b"\r\n\r\n" if sse else b""
        self._sse = sse
        # What comes before a chunk: SSE's field name, or the array's "[" (first chunk) then ",\r\n".
        self._prefix = b"data: " if sse else b"["
        self._done = False
        self._thinking = False  # the last content was a thought (where a signature goes)
        self._call: ToolCallStarted | None = None
        self._fragments: list[str] = []
        self._usage = Usage()

    def encode(self, event: StreamEvent) -> list[bytes]:
        if self._done:
            return []
        if isinstance(event, ToolCallDelta):
            if self._call is not None and event.key == self._call.key:
                self._fragments.append(event.fragment)
            return []
        if isinstance(event, StreamFailed):
            self._done = True  # a call still open may have lost the end of its arguments: it is dropped
            return [self._failure(event)]
        frames: list[bytes] = []
        if self._call is not None:
            frames.append(self._flush_call(self._call))
        if isinstance(event, TextDelta):
            if event.text:
                self._thinking = False
                frames.append(self._frame(b'{"text":', orjson.dumps(event.text), b"}"))
        elif isinstance(event, ThinkingDelta):
            if event.text:
                self._thinking = True
                frames.append(self._frame(b'{"text":', orjson.dumps(event.text), b',"thought":true}'))
        elif isinstance(event, ThinkingSignature):
            if event.signature:
                head = b'{"text":"","thought":true,"thoughtSignature":' if self._thinking else _SIGNED_EMPTY
                frames.append(self._frame(head, orjson.dumps(event.signature), b"}"))
        elif isinstance(event, ToolCallStarted):
            self._call = event
            self._fragments = []
        elif isinstance(event, UsageReported | MessageStarted):
            self._usage = self._usage.merged(event.usage)
        elif isinstance(event, Finished):
            self._done = True
            frames.append(self._last(event))
        # RedactedThinking: Gemini has no slot for it; BlockStopped: only closes a call (above).
        return frames

    def _flush_call(self, call: ToolCallStarted) -> bytes:
        self._call = None
        self._thinking = False
        part = call_part(call.id, call.name, "".join(self._fragments), call.signature)
        return self._frame(orjson.dumps(part))

    def _frame(self, *part: bytes) -> bytes:
        return b"".join((self._next_prefix(), _HEAD, *part, _OPEN_TAIL, self._tail, self._end))

    def _last(self, event: Finished) -> bytes:
        return b"".join(
            (
                self._next_prefix(),
                _HEAD,
                _LAST_PART,
                b'],"role":"model"},"finishReason":',
                orjson.dumps(finish_to_wire(event.reason)),
                b',"index":0}],"usageMetadata":',
                orjson.dumps(usage_metadata(self._usage)),
                b",",
                self._tail,
                self._end if self._sse else b"]",
            )
        )

    def _next_prefix(self) -> bytes:
        prefix = self._prefix
        if not self._sse:
            self._prefix = b",\r\n"
        return prefix

    def _failure(self, event: StreamFailed) -> bytes:
        error = stream_error_frame(event)
        if self._sse:
            return error
        return (b"[" if self._prefix == b"[" else b",") + error + b"]"  # "[": nothing was sent yet
