"""Same-dialect relay: an OpenAI-compatible upstream's stream to an OpenAI chat client, in the bytes it came in.

Decoding every chunk into canonical events and encoding it again is most of a stream's cost; here the body is
cut after its last complete event and passed on, and only what the books need is parsed: the first event (the
upstream's model name), the finish reason, the event that carries usage, an error event. Byte searches find
those; the same text inside a content string cannot match, since JSON escapes its quotes.

What an OpenAI client sees differs from the re-encoded stream only in the upstream's own ``id``, ``created``
and extra fields (``system_fingerprint``, ``service_tier``, ``obfuscation``...): ``model`` is rewritten to the
name the client asked for, and the usage-only chunk is left out unless the client asked for usage (apipod
always asks the upstream for it). A stream cut off before its finish ends with apipod's error event, as in the
re-encoding path, and a first event that is not JSON fails over; later content chunks are not validated (a
malformed one reaches the client as sent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects._event_cut import END as _END
from apipod.dialects._event_cut import EventRelay, first_of
from apipod.dialects.openai.mapping import finish_from_wire, usage_from_wire
from apipod.dialects.openai.stream_decoder import stream_error
from apipod.domain.stream import Finished, MessageStarted, Relayed, StreamEvent, StreamFailed, UsageReported

DONE_FRAME = b"data: [DONE]\n\n"
_DONE = b"[DONE]"
_ERROR = b'{"error"'
_USAGE = (b'"usage":{', b'"usage": {')
_FINISH = (b'"finish_reason":"', b'"finish_reason": "')
_TOOLS = b'"tool_calls"'
_MARKERS = (_ERROR, _DONE, *_USAGE)  # the events the books read: an error, the end, the usage
_MODEL = b'"model":'
_CUT_OFF = "The upstream stream ended before the answer was finished."
_MALFORMED = "The upstream sent a malformed stream chunk."


class StreamRelay(EventRelay):
    """One upstream stream. ``feed`` takes body chunks as they arrive, ``close`` the end of the body; both return
    canonical events: ``MessageStarted(relayed=True)`` first, then ``Relayed`` frames, with ``UsageReported``,
    ``Finished`` or ``StreamFailed`` where the stream says so. ``pending`` is the size of the unfinished event
    held back (for the caller's bound on an event's size)."""

    __slots__ = ("_finish", "_include_usage", "_learned", "_model", "_rewrite", "_started", "_tools")

    def __init__(self, *, model: str, include_usage: bool) -> None:
        super().__init__()
        self._model = orjson.dumps(model)
        self._include_usage = include_usage
        self._started = False
        self._finish: object = None  # the upstream's finish_reason once seen
        self._tools = False
        self._learned = False  # the upstream's model name seen (every chunk names it)
        self._rewrite: tuple[bytes, bytes] | None = None  # None also when the upstream names the client's model

    def _unfinished(self) -> list[StreamEvent]:
        """A stream that never finished was cut off; one that finished without ``[DONE]`` gets it."""
        if self._finish is None:
            return [StreamFailed("upstream", _CUT_OFF)]
        # some upstreams end with the finish chunk, never "[DONE]"
        return [Relayed(DONE_FRAME, 0), Finished(finish_from_wire(self._finish, saw_tool_call=self._tools))]

    def _segment(self, segment: bytes) -> list[StreamEvent]:
        """Whole events: passed on, unless one of them is what the books or the client's options need."""
        events: list[StreamEvent] = []
        if not self._started:
            segment = _from_first_data(segment)  # comments before the answer: nothing to relay, nothing started
            if not segment:
                return events
            started = self._start(segment)
            if isinstance(started, StreamFailed):
                self._done = True
                return [started]
            events.append(started)
        if not self._learned:
            self._learn(segment)
        if self._rewrite is not None:  # PERF: a search of the whole segment, spared when the names agree
            segment = segment.replace(*self._rewrite)
        tools = _TOOLS in segment  # one search serves the finish's mapping and the bound on the arguments
        if tools:
            self._tools = True
        marked = _first_marker(segment)
        if marked < 0:
            events.append(self._passed(segment, tools))
            return events
        # the events before the first marked one pass whole; from it on, one by one (the last few of a stream)
        cut = segment.rfind(_END, 0, marked) + 2 if marked else 0
        if cut > 1:
            events.append(self._passed(segment[:cut], tools))
        events.extend(self._one_by_one(segment[cut:] if cut > 1 else segment, tools))
        return events

    def _passed(self, segment: bytes, tools: bool) -> Relayed:
        if self._finish is None:
            self._finish = _finish_of(segment)
        return Relayed(segment, segment.count(b"data:"), len(segment) if tools else 0)

    def _start(self, segment: bytes) -> MessageStarted | StreamFailed:
        """The first event: an error (failed over, nothing was sent), else the upstream's id and model."""
        self._started = True
        first = segment.find(_END)
        payload = _payload(segment[:first] if first >= 0 else segment)
        if payload is None or payload == _DONE:
            return MessageStarted(relayed=True)  # a comment first, or an empty answer: the books see the rest
        chunk = _loads(payload)
        if not isinstance(chunk, dict):
            # the first event is checked (a garbage answer fails over before anything is sent); later ones are not
            return StreamFailed("upstream", _MALFORMED)
        error = chunk.get("error")
        if error:
            return stream_error(error)
        model = chunk.get("model")
        chunk_id = chunk.get("id")
        return MessageStarted(
            id=chunk_id if isinstance(chunk_id, str) else "",
            model=model if isinstance(model, str) else "",
            relayed=True,
        )

    def _learn(self, segment: bytes) -> None:
        """The rewrite of the upstream's model name to the client's, from the first chunk that names one (Azure's
        first chunk has an empty model). Found in the bytes: a model name has no quote to escape."""
        at = segment.find(_MODEL)
        while at >= 0:
            start = at + len(_MODEL)
            if segment[start : start + 1] == b" ":
                start += 1
            if segment[start : start + 1] == b'"':
                end = segment.find(b'"', start + 1)
                if end > start + 1:
                    self._learned = True
                    named, wanted = segment[at : end + 1], segment[at:start] + self._model
                    if named != wanted:
                        self._rewrite = (named, wanted)
                    return
            at = segment.find(_MODEL, start)

    def _one_by_one(self, segment: bytes, tools: bool) -> list[StreamEvent]:
        """The slow path, for the last events of a stream: usage read (and its chunk dropped when the client did
        not ask for usage), an error turned into the failure event, ``[DONE]`` ending the stream."""
        kept: list[bytes] = []
        books: list[StreamEvent] = []
        for block in segment.split(_END):
            payload = _payload(block)
            if payload is None:
                if block:
                    kept.append(block)  # a comment (keep-alive)
                continue
            if payload == _DONE:
                kept.append(block)
                self._done = True
                break
            if payload.startswith(_ERROR):
                chunk = _loads(payload)
                error = chunk.get("error") if isinstance(chunk, dict) else None
                books.append(stream_error(error or "The upstream reported an error."))
                self._done = True
                return _relayed(kept, tools) + books
            if _USAGE[0] in payload or _USAGE[1] in payload:
                chunk = _loads(payload)
                if isinstance(chunk, dict):
                    usage = chunk.get("usage")
                    if isinstance(usage, Mapping):
                        books.append(UsageReported(usage_from_wire(usage)))
                    if self._finish is None:
                        self._finish = _reason(chunk)
                    if not self._include_usage and not chunk.get("choices"):
                        continue  # the usage-only chunk the client did not ask for
            elif self._finish is None and (_FINISH[0] in payload or _FINISH[1] in payload):
                self._finish = _reason(_loads(payload))
            kept.append(block)
        events = _relayed(kept, tools) + books
        if self._done:
            events.append(Finished(finish_from_wire(self._finish, saw_tool_call=self._tools)))
        return events


def _from_first_data(segment: bytes) -> bytes:
    """``segment`` from its first event with data on (b"" when it has none)."""
    at = 0
    while at < len(segment):
        end = segment.find(_END, at)
        end = len(segment) if end < 0 else end + 2
        if _payload(segment[at:end]) is not None:
            return segment[at:] if at else segment
        at = end
    return b""


def _first_marker(segment: bytes) -> int:
    """Where the first event the books must read is mentioned; -1 when none is."""
    return first_of(segment, _MARKERS)


def _relayed(blocks: list[bytes], tools: bool) -> list[StreamEvent]:
    if not blocks:
        return []
    data = _END.join(blocks) + _END
    return [Relayed(data, len(blocks), len(data) if tools else 0)]


def _payload(block: bytes) -> bytes | None:
    """The data of one SSE event (its ``data:`` lines joined), None when it has none."""
    lines = [line for line in block.split(b"\n") if line.startswith(b"data:")]
    if not lines:
        return None
    values = [line[6:] if line.startswith(b"data: ") else line[5:] for line in lines]
    return (values[0] if len(values) == 1 else b"\n".join(values)).strip()


def _loads(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _reason(chunk: Any) -> object:
    """The finish reason of a chunk, None when it has none."""
    if not isinstance(chunk, dict):
        return None
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return choices[0].get("finish_reason")
    return None


def _finish_of(segment: bytes) -> object:
    """The finish reason in the first event of ``segment`` that has one (only that event is parsed)."""
    for marker in _FINISH:
        at = segment.find(marker)
        if at >= 0:
            start = segment.rfind(_END, 0, at)
            start = start + 2 if start >= 0 else 0
            end = segment.find(_END, at)
            reason = _reason(_loads(_payload(segment[start : end if end >= 0 else len(segment)]) or b""))
            if reason is not None:
                return reason
    return None
