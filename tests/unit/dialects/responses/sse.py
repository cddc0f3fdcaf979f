"""Test helpers for the Responses client codec: SSE frames back into (event name, data) pairs, and the
official SDK's stream event type."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
import pydantic
from openai.types.responses import ResponseStreamEvent

STREAM_EVENT: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)


def parse_frames(frames: Iterable[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """Each frame must be exactly ``event: X\\ndata: {...}\\n\\n`` with ``type`` == X."""
    events: list[tuple[str, dict[str, Any]]] = []
    for frame in frames:
        for block in frame.split(b"\n\n")[:-1]:
            head, _, data = block.partition(b"\n")
            assert head.startswith(b"event: "), block
            assert data.startswith(b"data: "), block
            name = head[7:].decode()
            payload = orjson.loads(data[6:])
            assert payload["type"] == name
            events.append((name, payload))
        assert frame.endswith(b"\n\n")
    return events
