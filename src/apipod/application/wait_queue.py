"""WaitQueue: the one place a request waits for capacity (a concurrency slot, a rate window, a cooldown).

Admission (the gateway's and the key's limits) and dispatch (the upstream models' limits) both wait here,
so ``max_queue`` bounds the requests waiting in this process, wherever they wait, and every wait ends by
the request's one deadline (``queue_wait_seconds`` after it arrived).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from apipod.application.ports import NoTelemetry, Telemetry
from apipod.application.settings import GovernanceSettings

T = TypeVar("T")

POLL_INITIAL = 0.005
POLL_MAX = 0.1


@attrs.define
class Busy(Exception):  # noqa: N818 - a signal between the two sides of the queue, not an error for anyone else
    """Raised by a queued step: nothing free now. ``retry_after`` is the earliest moment something frees up
    when that is known (a rate window, a cooldown); None when it is not (a full concurrency limit frees up
    whenever a request ends), and then the queue polls with backoff."""

    retry_after: float | None
    error: Exception


class WaitQueue:
    """Shared by every request of a process. Waiting is real time (the event loop's clock), even under a
    fake Clock: it paces polling, it is not a business rule."""

    def __init__(self, settings: GovernanceSettings, telemetry: Telemetry = NoTelemetry()) -> None:
        self._max = settings.max_queue
        self._wait = settings.queue_wait_seconds
        self._telemetry = telemetry
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests waiting now (a gauge read when metrics are scraped)."""
        return self._waiting

    def deadline(self) -> float:
        """When a request arriving now must stop waiting."""
        return asyncio.get_running_loop().time() + self._wait

    async def run(self, step: Callable[[], Awaitable[T]], deadline: float) -> T:
        """``step()`` until it returns; while it raises ``Busy``, wait (counted once against ``max_queue``)
        as long as the deadline allows, then raise the last ``Busy.error``."""
        try:
            return await step()
        except Busy as busy:
            last = busy
        try:
            return await self._queued(step, deadline, last)
        finally:
            # The error raised carries a traceback that holds this frame: were ``last`` still here, each refused
            # request would be left in a reference cycle, request and body with it, for the collector to find.
            del last

    async def _queued(self, step: Callable[[], Awaitable[T]], deadline: float, last: Busy) -> T:
        """``run`` once the first step was refused: the waiting, counted in the queue."""
        loop = asyncio.get_running_loop()
        try:
            if self._waiting >= self._max:
                raise last.error
            self._waiting += 1
            began = loop.time()
            served = False
            try:
                pause = POLL_INITIAL
                while True:
                    left = deadline - loop.time()
                    if left <= 0 or (last.retry_after is not None and last.retry_after > left):
                        raise last.error
                    await asyncio.sleep(min(pause, left) if last.retry_after is None else last.retry_after)
                    pause = min(pause * 2, POLL_MAX)
                    try:
                        value = await step()
                    except Busy as busy:
                        last = busy
                        continue
                    served = True
                    return value
            finally:
                self._waiting -= 1
                self._telemetry.queue_wait(loop.time() - began, served=served)
        finally:
            del last  # as in ``run``
