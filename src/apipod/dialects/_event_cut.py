"""What the same-dialect relays share: body chunks cut into whole SSE events, and the byte search for the events
the books must read."""

from __future__ import annotations

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


def first_of(segment: bytes, markers: tuple[bytes, ...]) -> int:
    """Where the first of ``markers`` occurs in ``segment``; -1 when none does."""
    found = [at for at in (segment.find(m) for m in markers) if at >= 0]
    return min(found) if found else -1
