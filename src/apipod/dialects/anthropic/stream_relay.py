"""Same-dialect relay: an Anthropic-compatible upstream's stream to an Anthropic client (Claude Code), in the bytes
it came in.

The body is cut after its last complete event and passed on; the content events (``content_block_*``, ``ping``)
are not parsed at all. The events the books need, ``message_start`` (input usage), ``message_delta`` (output
usage, stop reason), ``message_stop`` and ``error``, are found by a byte search and read by the dialect's own
``StreamDecoder``, so usage, the finish and failures mean exactly what they mean on the re-encoding path.

What the client sees is the upstream's stream: its message id, its ``ping`` events, and content blocks apipod does
not model (server tools, citations) included; ``model`` in ``message_start`` is rewritten to the name the client
asked for. Until the first content event the bytes are held back, so an ``error`` right after ``message_start``
(Anthropic's overloaded answer), a body that is not a stream, or comments without end still fail over before
anything was sent. A stream cut off before its stop reason
ends with apipod's error event.
"""

from __future__ import annotations

import attrs
import orjson

from apipod.dialects._event_cut import END as _END
from apipod.dialects._event_cut import EventRelay, first_of
from apipod.dialects.anthropic.stream_decoder import StreamDecoder
from apipod.domain.stream import Finished, MessageStarted, Relayed, StreamEvent, StreamFailed

_MARKERS = (b'"type":"message_', b'"type": "message_', b'"type":"error"', b'"type": "error"')
_MODEL = b'"model":'
_CONTENT = (b'"type":"content_block_', b'"type": "content_block_')
_ARGUMENTS = b"input_json_delta"  # the delta that streams a tool's input


class StreamRelay(EventRelay):
    """One upstream stream: ``feed`` body chunks, then ``close``; both return canonical events (see the OpenAI
    relay, dialects/openai/stream_relay.py). ``pending``: the bytes of the unfinished event held back."""

    __slots__ = ("_books", "_held", "_model", "_open", "_rewrite")

    def __init__(self, *, model: str) -> None:
        super().__init__()
        self._books = StreamDecoder()
        self._model = orjson.dumps(model)
        self._held = b""  # events before the first content event
        self._open = False  # content went out: from now on bytes pass as they come
        self._rewrite: tuple[bytes, bytes] | None = None

    def _unfinished(self) -> list[StreamEvent]:
        """The decoder decides whether the answer was complete."""
        books = self._books.close()
        if self._held and any(type(e) is Finished for e in books):
            return [_relayed(self._held), *books]
        return books

    def _segment(self, segment: bytes) -> list[StreamEvent]:
        if self._rewrite is None and not self._open:
            self._rewrite = rewrite = _model_rewrite(segment, self._model)
            if rewrite is not None:
                segment = segment.replace(*rewrite)
        if not self._open:
            return self._one_by_one(segment)
        return self._passed(segment)

    def _passed(self, segment: bytes) -> list[StreamEvent]:
        """Once content went out: the events before the first one the books read pass whole."""
        marked = _first_marker(segment)
        if marked < 0:
            return [_relayed(segment)]
        cut = segment.rfind(_END, 0, marked) + 2 if marked else 0
        events: list[StreamEvent] = []
        if cut > 1:
            events.append(_relayed(segment[:cut]))
        events.extend(self._one_by_one(segment[cut:] if cut > 1 else segment))
        return events

    def _one_by_one(self, segment: bytes) -> list[StreamEvent]:
        """Events read singly: the books' events go to the decoder, the rest only decide when bytes may flow.

        PERF: the first content event opens the stream; what follows it in ``segment`` (most of the answer,
        when the upstream sends it in one piece) goes back to ``_passed`` instead of being read event by event."""
        kept: list[bytes] = []
        books: list[StreamEvent] = []
        opening = not self._open
        rest = b""
        at, size = 0, len(segment)
        while at < size:
            end = segment.find(_END, at)
            if end < 0:
                end = size
            block, at = segment[at:end], end + 2
            if not block:
                continue
            marked = _first_marker(block) >= 0
            if marked:
                name, data = _event(block)
                for event in self._books.feed(name, data):
                    if type(event) is StreamFailed:
                        self._done = True
                        if not self._open:
                            return [*books, event]  # nothing went out: the dispatcher fails over
                        return [*_ordered(books, self._flush(kept)), event]
                    books.append(attrs.evolve(event, relayed=True) if type(event) is MessageStarted else event)
                    if type(event) is Finished:
                        self._done = True
            elif not self._open and (_CONTENT[0] in block or _CONTENT[1] in block):
                self._open = True  # the first content event: the stream commits
            kept.append(block)
            if self._done:
                break
            if opening and self._open:
                rest = segment[at:]
                break
        if self._done:
            self._open = True  # an answer without content (or its end): what was held goes out with it
        if not self._open:
            self._held += _END.join(kept) + _END if kept else b""
            return books
        events = _ordered(books, self._flush(kept))
        if rest:
            events.extend(self._passed(rest))
        return events

    def _flush(self, kept: list[bytes]) -> list[StreamEvent]:
        data = self._held + (_END.join(kept) + _END if kept else b"")
        self._held = b""
        return [_relayed(data)] if data else []


def _relayed(data: bytes) -> Relayed:
    """Whole events passed on; their size counts against the bound on a tool input when one is streamed in them."""
    return Relayed(data, data.count(b"data:"), len(data) if _ARGUMENTS in data else 0)


def _ordered(books: list[StreamEvent], relayed: list[StreamEvent]) -> list[StreamEvent]:
    """``MessageStarted`` first (it puts the client's encoder in relay mode), then the bytes, then the rest."""
    started = [e for e in books if type(e) is MessageStarted]
    return [*started, *relayed, *(e for e in books if type(e) is not MessageStarted)]


def _model_rewrite(segment: bytes, model: bytes) -> tuple[bytes, bytes] | None:
    """``message_start``'s model, to be replaced by the client's name (a model name has no quote to escape)."""
    at = segment.find(_MODEL)
    if at < 0:
        return None
    start = at + len(_MODEL)
    if segment[start : start + 1] == b" ":
        start += 1
    if segment[start : start + 1] != b'"':
        return None
    end = segment.find(b'"', start + 1)
    return (segment[at : end + 1], segment[at:start] + model) if end > start else None


def _first_marker(segment: bytes) -> int:
    """Where the first event the books must read is mentioned; -1 when none is."""
    return first_of(segment, _MARKERS)


def _event(block: bytes) -> tuple[str | None, bytes]:
    """One SSE event's name and data (its ``data:`` lines joined)."""
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
        elif line.startswith(b"data:"):
            data.append(line[6:] if line.startswith(b"data: ") else line[5:])
    return name, b"\n".join(data)
