"""Deterministic clock, randomness and ids for tests, demos and reproducible runs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from apipod.application.ports import Clock, IdGenerator, Randomness

DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


class FixedClock(Clock):
    """A clock that moves only when told. ``advance`` moves wall and monotonic time together."""

    def __init__(self, start: datetime = DEFAULT_START, *, monotonic: float = 0.0) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._monotonic = monotonic

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def set(self, when: datetime) -> None:
        """Jump the wall clock to ``when``; monotonic time moves by the same amount when it goes forward."""
        if when.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware time")
        delta = (when - self._now).total_seconds()
        self._now = when.astimezone(UTC)
        self._monotonic += max(delta, 0.0)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go back")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds


class SeededRandomness(Randomness):
    """Reproducible draws and bytes from one seeded generator. Never for real keys."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)

    def random(self) -> float:
        return self._rng.random()

    def token_bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n)


class SequentialIdGenerator(IdGenerator):
    """``prefix`` plus a counter: ``req_1``, ``req_2``... The counter is shared across prefixes."""

    def __init__(self, start: int = 1) -> None:
        self._next = start

    def new_id(self, prefix: str = "") -> str:
        value = self._next
        self._next += 1
        return f"{prefix}{value}"
