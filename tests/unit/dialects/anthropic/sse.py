"""Test helpers: split SSE text into (event, data) pairs and feed recorded streams through the codecs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from apipod.dialects.anthropic import StreamDecoder
from apipod.domain.stream import StreamEvent
from tests.fixture_path import fixture


def split_sse(raw: bytes) -> list[tuple[str | None, bytes]]:
    events: list[tuple[str | None, bytes]] = []
    for chunk in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name: str | None = None
        data: list[bytes] = []
        for line in chunk.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                data.append(line[5:].lstrip())
        if name is not None or data:
            events.append((name, b"\n".join(data)))
    return events


def frames_to_events(frames: Iterable[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """Encoder output as (event name, payload); also checks that each frame is one complete SSE event."""
    out: list[tuple[str, dict[str, Any]]] = []
    for frame in frames:
        assert frame.endswith(b"\n\n")
        parsed = split_sse(frame)
        assert len(parsed) == 1, frame
        name, data = parsed[0]
        assert name is not None
        payload = orjson.loads(data)
        assert payload["type"] == name
        out.append((name, payload))
    return out


def decode_fixture(name: str) -> list[StreamEvent]:
    decoder = StreamDecoder()
    events: list[StreamEvent] = []
    for event, data in split_sse(fixture(f"anthropic/{name}").read_bytes()):
        events.extend(decoder.feed(event, data))
    events.extend(decoder.close())
    return events
