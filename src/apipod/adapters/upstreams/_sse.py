"""An incremental Server-Sent Events decoder over raw body chunks (the WHATWG event-stream format).

Why our own rather than httpx-sse: it works on bytes end to end (the dialect decoders parse JSON with
orjson straight from bytes, so text decoding would be a wasted copy), and it keeps a partial line as a list
of pieces joined once when the line completes, so a 10 MB ``data:`` line arriving in 16 KB chunks costs one
join instead of a quadratic series of re-scans and re-copies.

It also bounds what it buffers (``max_event_bytes``): the pieces of an unterminated line and the data lines
of an undispatched event are counted as they arrive, and the decoder raises ``SSEEventTooLarge`` before
joining past the cap, so a hostile upstream's endless line costs at most the cap in memory.
"""

from __future__ import annotations

import sys

SSEEvent = tuple[str | None, bytes]
"""One dispatched event: its ``event:`` name (None when absent) and its data lines joined by ``\\n``."""

_LF = b"\n"
_CR = b"\r"


class SSEEventTooLarge(Exception):  # noqa: N818 - a condition of the body, raised to stop reading it
    """A line or an event grew past the decoder's cap."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"an SSE event longer than {limit} bytes")
        self.limit = limit


class SSEDecoder:
    """Feed body chunks as they arrive; get back the events they complete.

    Lines may end in ``\\n``, ``\\r\\n`` or a lone ``\\r``, also when a ``\\r\\n`` pair is split across
    chunks. Comments (``:``) and the ``id``/``retry`` fields are ignored. ``close()`` dispatches an event
    left unterminated at the end of the body: the spec drops it, but some upstreams omit the final blank
    line and their last event (``[DONE]``, ``message_stop``) matters.
    """

    __slots__ = ("_cr_pending", "_data", "_data_size", "_event", "_limit", "_tail", "_tail_size")

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self._tail: list[bytes] = []  # pieces of the current, unterminated line
        self._tail_size = 0  # their total length
        self._cr_pending = False  # the last chunk ended in "\r": a "\n" opening the next belongs to it
        self._event: str | None = None
        self._data: list[bytes] = []
        self._data_size = 0  # total length of the current event's data lines
        self._limit = max_event_bytes or sys.maxsize

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._cr_pending:
            self._cr_pending = False
            if chunk[:1] == _LF:
                chunk = chunk[1:]
        if _CR in chunk:
            self._cr_pending = chunk.endswith(_CR)
            chunk = chunk.replace(b"\r\n", _LF).replace(_CR, _LF)
        end = chunk.rfind(_LF)
        if end < 0:
            if chunk:
                self._tail_size += len(chunk)
                if self._tail_size > self._limit:
                    raise SSEEventTooLarge(self._limit)
                self._tail.append(chunk)
            return []
        if self._tail:
            if self._tail_size + chunk.find(_LF) > self._limit:  # the line the tail starts ends too late
                raise SSEEventTooLarge(self._limit)
            self._tail.append(chunk[:end])
            complete = b"".join(self._tail)
            self._tail.clear()
        else:
            complete = chunk[:end]
        self._tail_size = len(chunk) - end - 1
        if self._tail_size:
            if self._tail_size > self._limit:
                raise SSEEventTooLarge(self._limit)
            self._tail.append(chunk[end + 1 :])
        events: list[SSEEvent] = []
        # PERF: the lines of almost every event (``event: ...``, ``data: ...`` and the blank one) are read
        # here, on local copies of the decoder's state; any other line goes through ``_line``.
        data, size, name, limit = self._data, self._data_size, self._event, self._limit
        for line in complete.split(_LF):
            if not line:
                if data:
                    events.append((name, data[0] if len(data) == 1 else _LF.join(data)))
                    data = []
                    size = 0
                name = None
            elif line.startswith(b"data: "):
                size += len(line) - 6
                if size > limit:
                    raise SSEEventTooLarge(limit)
                data.append(line[6:])
            elif line.startswith(b"event: "):
                name = line[7:].decode("utf-8", "replace")
            else:
                self._data, self._data_size, self._event = data, size, name
                self._line(line, events)
                data, size, name = self._data, self._data_size, self._event
        self._data, self._data_size, self._event = data, size, name
        return events

    def close(self) -> list[SSEEvent]:
        """End of body: the unterminated last line and event, if any."""
        events: list[SSEEvent] = []
        if self._tail:
            self._line(b"".join(self._tail), events)
            self._tail.clear()
            self._tail_size = 0
        self._line(b"", events)
        return events

    def _dispatch(self, events: list[SSEEvent]) -> None:
        """A blank line: the event gathered so far, if any, is complete."""
        if self._data:
            data = self._data[0] if len(self._data) == 1 else _LF.join(self._data)
            events.append((self._event, data))
            self._data = []
            self._data_size = 0
        self._event = None

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            self._dispatch(events)
            return
        if line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            self._data_size += len(value)
            if self._data_size > self._limit:
                raise SSEEventTooLarge(self._limit)
            self._data.append(value)
            return
        if line[0] == 0x3A:  # ":" a comment, often a keep-alive
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"data":  # "data" without a colon: an empty data line
            self._data.append(b"")
