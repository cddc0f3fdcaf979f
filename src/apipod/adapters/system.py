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


class RandomIdGenerator(IdGenerator):
    """``prefix`` plus 24 URL-safe characters (144 random bits): one base64 call, no per-character loop."""

    def new_id(self, prefix: str = "") -> str:
        return prefix + base64.urlsafe_b64encode(secrets.token_bytes(18)).decode("ascii")
