"""The retry policy for upstream calls: a few quick attempts at *connecting*, nothing more.

Only failures before any response exists are retried (connection refused, connect timeout): the request
never reached the upstream, so trying again cannot duplicate output or billing. Everything after a response
started belongs to the dispatcher's failover, which rests the failing account and picks another.

The backoff is our own ``ExponentialJitter`` rather than tenacity's ``wait_exponential_jitter``: that class
renamed its first argument across the releases ``tenacity>=9.0`` allows (``initial`` up to 9.1, ``multiplier``
from 9.2, which deprecates ``initial``), so no keyword works on all of them. A wait callable of the retry state
is accepted by every tenacity release.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
)

T = TypeVar("T")


@attrs.frozen
class ExponentialJitter:
    """A tenacity wait: ``min(maximum, initial * 2**(n-1) + uniform(0, jitter))`` before retry ``n``.

    Independent of the tenacity release (see the module docstring); ``rand`` is injectable for tests.
    """

    initial: float
    maximum: float
    jitter: float
    rand: Callable[[float, float], float] = random.uniform

    def __call__(self, state: RetryCallState) -> float:
        exponent = max(state.attempt_number - 1, 0)
        try:
            base = self.initial * 2.0**exponent
        except OverflowError:
            base = self.maximum
        return max(0.0, min(base + self.rand(0.0, self.jitter), self.maximum))


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How often and how patiently to retry a connection failure.

    Attributes:
        attempts: total tries, the first included; 1 disables retrying (tests, or a deployment whose
            dispatcher should fail over at once).
        wait_initial: seconds before the second try; later waits double, with jitter of the same size.
        wait_max: the longest single wait.
    """

    attempts: int = attrs.field(default=2, validator=attrs.validators.ge(1))
    wait_initial: float = attrs.field(default=0.05, validator=attrs.validators.ge(0))
    wait_max: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))

    @classmethod
    def disabled(cls) -> RetryPolicy:
        """One attempt, no waiting: the switch tests use to see failures at once."""
        return cls(attempts=1, wait_initial=0.0, wait_max=0.0)

    async def call(self, fn: Callable[[], Awaitable[T]], *, retry_on: tuple[type[BaseException], ...]) -> T:
        """``await fn()``, trying again on ``retry_on`` up to ``attempts`` times; the last failure is raised
        as is.

        NOTE: the first attempt runs outside tenacity: its per-call bookkeeping costs tens of microseconds,
        which the common, successful path should not pay.
        """
        try:
            return await fn()
        except retry_on:
            if self.attempts <= 1:
                raise
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts - 1),
            wait=ExponentialJitter(self.wait_initial, self.wait_max, self.wait_initial),
            retry=retry_if_exception_type(retry_on),
            before=self._first_wait,
            reraise=True,
        )

        async def attempt() -> T:  # tenacity awaits only what it sees is a coroutine function
            return await fn()

        return await retrying(attempt)

    async def _first_wait(self, state: RetryCallState) -> None:
        """Tenacity waits only between its own attempts; this is the pause after the untracked first one."""
        if state.attempt_number == 1 and self.wait_initial > 0:
            await asyncio.sleep(self.wait_initial)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy.disabled()
