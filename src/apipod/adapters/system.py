"""The real clock, randomness and id generator (their test doubles live in ``adapters.memory.system``)."""

from __future__ import annotations

import base64
import random
import secrets
import time
from datetime import UTC, datetime

from apipod.application.ports import Clock, IdGenerator, Randomness


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


class SystemRandomness(Randomness):
    """Routing draws from ``random`` (fast, not secret); key material from ``secrets``."""

    def random(self) -> float:
        return random.random()

    def token_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)


_URL_SAFE = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_IN_ORDER = bytes.maketrans(_URL_SAFE, bytes(sorted(_URL_SAFE)))
"""The URL-safe base64 digits mapped to the same characters in ASCII order, so that the text sorts as the
number does."""


class RandomIdGenerator(IdGenerator):
    """``prefix`` plus 24 URL-safe characters: one base64 call, no per-character loop.

    With a ``clock``, the first 8 characters are the millisecond of ``clock.now()`` (sorting as time does) and
    the other 16 are random (96 bits); without one, all 144 bits are random. PERF: ids that follow each other
    sort together, so the usage table's ``request_id`` index grows at its end: a batch of usage rows writes
    one or two of its pages, where random ids wrote a page per row (SQLite's write-ahead log, PostgreSQL's
    index pages alike).
    """

    __slots__ = ("_clock",)

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock

    def new_id(self, prefix: str = "") -> str:
        clock = self._clock
        if clock is None:
            return prefix + base64.urlsafe_b64encode(secrets.token_bytes(18)).decode("ascii")
        millisecond = int(clock.now().timestamp() * 1000) & 0xFFFF_FFFF_FFFF
        raw = millisecond.to_bytes(6, "big") + secrets.token_bytes(12)
        return prefix + base64.urlsafe_b64encode(raw).translate(_IN_ORDER).decode("ascii")
