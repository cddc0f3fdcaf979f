"""Answers no well-behaved upstream gives, for the hostile-upstream tests: bodies that never end, a single
line of many megabytes, keep-alive comments forever, a stall after some frames.

``Flood`` is a ``Reply`` that the hostile fakes (``HostileOpenAI``, ``HostileAnthropic``) understand on top of
everything the scripted fakes do. It is produced piece by piece, so a 100 MB body costs the fake nothing, and
it stops as soon as the client goes away (which is what the gateway must do at its bounds).
"""

from __future__ import annotations

import asyncio
import math

import attrs

from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.scripted import Outcome, Reply, ScriptedUpstream, Send

__all__ = ["Flood", "HostileAnthropic", "HostileOpenAI"]


@attrs.define
class Flood(Reply):
    """``frames`` (if any) as usual, then ``piece`` again and again (every ``every`` seconds) until ``size``
    bytes of pieces went out or the client left, then ``tail``; ``stall`` instead of ending: send nothing
    more until the client leaves. ``content_type`` replaces the SSE default."""

    piece: bytes = b": keep-alive\n\n"
    every: float = 0.0
    size: float = math.inf
    tail: bytes = b""
    stall: bool = False
    content_type: str = "text/event-stream"


class _Hostile(ScriptedUpstream):
    """What ``Flood`` adds to a scripted fake. Counts the bytes of every flood sent, for assertions."""

    flood_bytes: int = 0

    async def _send(self, reply: Reply, send: Send, watcher: asyncio.Future[None], outcome: Outcome) -> None:
        if not isinstance(reply, Flood):
            await super()._send(reply, send, watcher, outcome)
            return
        headers = [(b"content-type", reply.content_type.encode()), *_encoded(reply.headers)]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        for frame in reply.frames or ():
            await send({"type": "http.response.body", "body": frame, "more_body": True})
            outcome.frames_sent += 1
        sent = 0
        while sent < reply.size and not watcher.done():
            await send({"type": "http.response.body", "body": reply.piece, "more_body": True})
            sent += len(reply.piece)
            self.flood_bytes += len(reply.piece)
            # NOTE: a zero wait still yields, so a client's disconnect is seen between pieces.
            await asyncio.wait({watcher}, timeout=reply.every)
        if reply.stall and not watcher.done():
            await asyncio.wait({watcher})
        if watcher.done():
            outcome.disconnected = True
            return
        await send({"type": "http.response.body", "body": reply.tail})
        outcome.completed = True


def _encoded(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class HostileOpenAI(_Hostile, FakeOpenAI):
    """``FakeOpenAI`` that also plays ``Flood`` replies."""


class HostileAnthropic(_Hostile, FakeAnthropic):
    """``FakeAnthropic`` that also plays ``Flood`` replies."""
