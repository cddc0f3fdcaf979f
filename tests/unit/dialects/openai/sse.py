"""Test helpers: split SSE bytes into (event, data) pairs and run recorded streams through the decoder."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from apipod.dialects.openai import StreamDecoder
from apipod.domain.stream import StreamEvent
from tests.fixture_path import fixture


def split_sse(raw: bytes) -> list[tuple[str | None, bytes]]:
    events: list[tuple[str | None, bytes]] = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name: str | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip())
        if name is not None or data:
            events.append((name, b"\n".join(data)))
    return events


def decode_stream(raw: bytes, *, close: bool = True) -> list[StreamEvent]:
    decoder = StreamDecoder()
    events: list[StreamEvent] = []
    for name, data in split_sse(raw):
        events.extend(decoder.feed(name, data))
    if close:
        events.extend(decoder.close())
    return events


def decode_fixture(relative: str) -> list[StreamEvent]:
    return decode_stream(fixture(relative).read_bytes())


def chunks(frames: Iterable[bytes]) -> list[Any]:
    """Encoder frames as payloads (``"[DONE]"`` for the terminator); each frame must be one whole SSE event."""
    out: list[Any] = []
    for frame in frames:
        assert frame.startswith(b"data: ")
        assert frame.endswith(b"\n\n")
        assert frame.count(b"\n\n") == 1, frame
        data = frame[6:-2]
        out.append("[DONE]" if data == b"[DONE]" else orjson.loads(data))
    return out
