"""Gemini ``streamGenerateContent?alt=sse`` chunks -> canonical stream events
(docs/protocols/translation.md §8.1 "From GM").

Every chunk is a whole ``GenerateContentResponse`` holding only the new parts; usage is a running total
(replace, never add) that Gemini repeats on every chunk, so only the latest is kept and it is reported once,
with the chunk that finishes, or at the end or failure of the body (one event, not one per chunk: each event
costs a trip through every stage of the relay). Calls arrive whole, so each becomes start + one delta with the
compact JSON + stop. There is no ``[DONE]``: the finish reason is remembered and ``Finished`` is emitted by
``close()`` at the end of the body; a body that ends without a finish reason ends in ``StreamFailed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects.gemini.errors import read_error
from apipod.dialects.gemini.response import (
    IdFactory,
    candidate_parts,
    finish_reason,
    first_candidate,
    new_call_id,
    text_of,
    tool_use,
    usage_from,
)
from apipod.dialects.upstream_faults import stream_failure
from apipod.domain.chat import FinishReason, Usage
from apipod.domain.stream import (
    BlockStopped,
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


def failure(error: Mapping[str, Any]) -> StreamFailed:
    """The StreamFailed for a Gemini error object, under the shared policy (its ``code`` is the status)."""
    read = read_error(error)
    code = error.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else None
    return stream_failure(status, codes=read.codes, hints=read.hints, message=read.message)


class StreamDecoder:
    """One per upstream stream. ``names`` maps rewritten tool names back to the client's."""

    __slots__ = ("_blocked", "_calls", "_closed", "_finish", "_ids", "_latest", "_names", "_started", "_usage")

    def __init__(self, *, ids: IdFactory = new_call_id, names: Mapping[str, str] | None = None) -> None:
        self._ids = ids
        self._names: Mapping[str, str] = names or {}
        self._started = False
        self._closed = False
        self._blocked = False
        self._calls = 0
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._latest: Mapping[str, Any] | None = None  # the newest usageMetadata not yet reported

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
        if self._closed or not data or data.isspace():
            return []
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._fail("upstream", "The upstream sent a malformed stream chunk.")
        return self.feed_json(body)

    def feed_json(self, body: Any) -> list[StreamEvent]:
        """One already-parsed chunk (or a JSON array of them), for wrappers that unwrap an envelope first
        (Antigravity's ``{"response": {...}}``)."""
        if self._closed:
            return []
        out: list[StreamEvent] = []
        for chunk in body if isinstance(body, list) else (body,):
            if isinstance(chunk, Mapping) and not self._chunk(chunk, out):
                break
        return out

    def close(self) -> list[StreamEvent]:
        if self._closed:
            return []
        self._closed = True
        if not self._started:
            return [StreamFailed(kind="upstream", message="The upstream ended the stream without an answer.")]
        out: list[StreamEvent] = []
        self._report_usage(out)
        if self._blocked:
            out.append(Finished(FinishReason.CONTENT_FILTER))
        elif self._finish is None:
            # Gemini's last chunk always carries the finish reason. A body that ends without one was cut off,
            # or ended in an error object outside the SSE framing (docs/protocols/gemini.md §4): a failure, not an
            # answer.
            out.append(StreamFailed(kind="upstream", message="The upstream stream ended before the answer finished."))
        else:
            out.append(Finished(finish_reason(self._finish, tool_calls=self._calls > 0)))
        return out

    def _fail(self, kind: str, message: str) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        self._report_usage(out)  # what was generated before the failure is still billed
        self._closed = True
        out.append(StreamFailed(kind=kind, message=message))
        return out

    def _report_usage(self, out: list[StreamEvent]) -> None:
        meta, self._latest = self._latest, None
        if meta is None:
            return
        usage = usage_from(meta)
        if usage != self._usage:
            self._usage = usage
            out.append(UsageReported(usage))

    def _chunk(self, chunk: Mapping[str, Any], out: list[StreamEvent]) -> bool:
        """Appends the chunk's events; False when it was an error that ends the stream."""
        error = chunk.get("error")
        if isinstance(error, Mapping):
            failed = failure(error)
            out.extend(self._fail(failed.kind, failed.message))
            return False
        meta = chunk.get("usageMetadata")
        if isinstance(meta, Mapping):
            self._latest = meta
        if not self._started:
            self._started = True
            usage = Usage() if self._latest is None else usage_from(self._latest)
            self._usage = usage
            self._latest = None
            out.append(
                MessageStarted(
                    id=text_of(chunk.get("responseId")), model=text_of(chunk.get("modelVersion")), usage=usage
                )
            )
        candidate = first_candidate(chunk)
        for raw in candidate_parts(candidate):
            if isinstance(raw, Mapping):
                self._part(raw, out)
        if candidate is not None:
            if reason := text_of(candidate.get("finishReason")):
                self._finish = reason
        else:
            feedback = chunk.get("promptFeedback")
            if isinstance(feedback, Mapping) and feedback.get("blockReason"):
                self._blocked = True
        if self._finish is not None or self._blocked:
            self._report_usage(out)
        return True

    def _part(self, raw: Mapping[str, Any], out: list[StreamEvent]) -> None:
        signature = text_of(raw.get("thoughtSignature"))
        text = text_of(raw.get("text"))
        if raw.get("thought"):
            if text:
                out.append(ThinkingDelta(text))
            if signature:
                out.append(ThinkingSignature(signature))
        elif "functionCall" in raw:
            call = tool_use(raw["functionCall"], signature, self._ids, self._names)
            key = self._calls
            self._calls += 1
            out.append(ToolCallStarted(key=key, id=call.id, name=call.name, signature=call.signature))
            out.append(ToolCallDelta(key=key, fragment=call.arguments))
            out.append(BlockStopped())
        elif "text" in raw:
            if text:
                out.append(TextDelta(text))
            if signature:  # a signed (often empty) text part: the signature belongs to the turn
                out.append(ThinkingSignature(signature))
