"""What the same-dialect relays share: body chunks cut into whole SSE events, the relay's feed-and-close skeleton
around that cut, and the byte search for the events the books must read."""

from __future__ import annotations

from apipod.domain.stream import StreamEvent

END = b"\n\n"


class EventCut:
    """Body chunks in, whole events out: the bytes up to the last blank line (``\\r\\n`` made ``\\n``); the
    unfinished event is held back, ``pending`` bytes of it, for the caller's bound on an event's size."""

    __slots__ = ("_tail",)

    def __init__(self) -> None:
        self._tail = b""

    @property
    def pending(self) -> int:
        return len(self._tail)

    def feed(self, chunk: bytes) -> bytes:
        """The whole events this chunk completes (b"" when none)."""
        data = self._tail + chunk if self._tail else chunk
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        end = data.rfind(END)
        if end < 0:
            self._tail = data
            return b""
        cut = end + 2
        segment, self._tail = data[:cut], data[cut:]
        return segment

    def rest(self) -> bytes:
        """End of body: an unterminated last event, terminated (b"" when there is none)."""
        tail, self._tail = self._tail, b""
        return tail.rstrip(b"\n") + END if tail.strip() else b""


class EventRelay:
    """One upstream stream relayed in its own bytes: ``feed`` body chunks as they arrive, then ``close`` at the
    end of the body; both return canonical events. A dialect's relay reads whole events (``_segment``), sets
    ``_done`` once its stream ended, and says what a body that ended early means (``_unfinished``).
    ``pending``: the bytes of the unfinished event held back, for the caller's bound on an event's size."""

    __slots__ = ("_cut", "_done")

    def __init__(self) -> None:
        self._cut = EventCut()
        self._done = False

    @property
    def pending(self) -> int:
        return self._cut.pending

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._done or not chunk:
            return []
        segment = self._cut.feed(chunk)
        return self._segment(segment) if segment else []

    def close(self) -> list[StreamEvent]:
        """End of body: an unterminated last event still counts; then the dialect decides what the end means."""
        if self._done:
            return []
        tail = self._cut.rest()
        events = self._segment(tail) if tail else []
        if self._ended():
            return events
        self._done = True
        events.extend(self._unfinished())
        return events

    def _ended(self) -> bool:
        return self._done  # a call, not the attribute: the checker would take it for still False after the guard

    def _segment(self, segment: bytes) -> list[StreamEvent]:
        """Whole events (``segment`` ends with a blank line): what goes to the client and to the books."""
        raise NotImplementedError

    def _unfinished(self) -> list[StreamEvent]:
        """The body ended before the stream's own end: the events that say how it ends."""
        raise NotImplementedError


def first_of(segment: bytes, markers: tuple[bytes, ...]) -> int:
    """Where the first of ``markers`` occurs in ``segment``; -1 when none does.

    PERF: each search is bounded by the best position found so far, so a marker near the start of a long
    segment spares the others a full pass."""
    first = -1
    for marker in markers:
        at = segment.find(marker, 0, first + len(marker) if first >= 0 else len(segment))
        if at >= 0:
            first = at
    return first
