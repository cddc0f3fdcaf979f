from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations and cooldowns."""
        ...


class Randomness(Protocol):
    def random(self) -> float:
        """Uniform in [0, 1): weighted routing draws."""
        ...

    def token_bytes(self, n: int) -> bytes:
        """Cryptographically strong bytes: key minting."""
        ...


class IdGenerator(Protocol):
    def new_id(self, prefix: str = "") -> str:
        """A unique id: ``prefix`` followed by URL-safe characters, random in part or in all (an
        implementation may lead with the time, so that ids made one after another sort together)."""
        ...
