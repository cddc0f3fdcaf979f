"""The two time bounds of an upstream call that httpx's per-operation timeouts cannot express.

httpx bounds each connect and each read (``timeouts.read``, the longest silence); an upstream that keeps the
connection busy with keep-alive comments, pings or empty chunks never trips that. ``Deadline`` adds, on the
event loop's clock (real time, like the read timeout):

- ``first_event``: from sending the request until the first event that means something to the dialect decoder
  (comments, Anthropic ``ping`` events and empty chunks do not count) or the first bytes of a JSON answer;
- ``total``: the whole call, streaming included.

Why one loop timer per call instead of ``asyncio.timeout`` around every read: a stream reads hundreds of
chunks, and a fresh timeout scope per chunk costs a timer-heap insertion and removal each time. Here the timer
is armed once (and moved once, at the first event); when it fires during a read it cancels the task waiting
on that read, the way ``asyncio.timeout`` does, and a read that would start after it fired is refused.
A generator must never yield inside a timeout scope (the scope would cancel whatever its consumer does in
the meantime), which is the other reason the task is only recorded around the reads themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from apipod.domain.catalog import Upstream
from apipod.domain.errors import UpstreamTimeoutError

T = TypeVar("T")


class Deadline:
    """The ``first_event`` then ``total`` deadline of one call; create it when the request is about to go out.

    Around every await on the upstream: ``enter()`` before (or, in a hot loop, the same inline: check
    ``expired``, and set ``task`` to the current task once the loop time reaches ``watch_from``),
    ``task = None`` after, and on ``CancelledError`` ask ``absorbs()`` whether the cancellation was this
    deadline's own (then raise ``error()`` instead).
    """

    __slots__ = (
        "_fired_on",
        "_first_bound",
        "_handle",
        "_loop",
        "_total_at",
        "_upstream",
        "awaiting_first",
        "expired",
        "task",
        "watch_from",
    )

    def __init__(self, upstream: Upstream, *, first_event: bool = True) -> None:
        """``first_event=False`` for a non-streamed answer: the upstream sends it whole when the generation is
        done, so its first bytes come as late as its last and only ``total`` (and ``read``) bound it; a long
        generation cut at ``first_event`` would be paid for and then asked again of the next candidate."""
        loop = asyncio.get_running_loop()
        timeouts = upstream.timeouts
        now = loop.time()
        self._loop = loop
        self._upstream = upstream
        self._total_at = now + timeouts.total
        first_at = now + timeouts.first_event if first_event else self._total_at
        self._first_bound = first_at < self._total_at  # which bound the first timer stands for
        at = min(first_at, self._total_at)
        self._handle = loop.call_at(at, self._fire)
        # A read ends within ``timeouts.read`` (httpx's idle timeout), so one that starts before this loop
        # time cannot outlast the deadline and needs no watching: most reads of a long stream skip the work.
        self.watch_from = at - timeouts.read
        self.task: asyncio.Task[Any] | None = None  # the task waiting on the upstream right now
        self._fired_on: asyncio.Task[Any] | None = None  # the task this deadline cancelled
        self.awaiting_first = True
        self.expired = False

    def first_event(self) -> None:
        """The first event (or answer bytes) arrived: from now on only ``total`` bounds the call."""
        self.awaiting_first = False
        if not self.expired and self._first_bound:
            self._handle.cancel()
            self._first_bound = False
            self._handle = self._loop.call_at(self._total_at, self._fire)
            self.watch_from = self._total_at - self._upstream.timeouts.read

    def enter(self) -> None:
        """About to wait on the upstream. Raises ``UpstreamTimeoutError`` when the deadline already passed."""
        if self.expired:
            raise self.error()
        self.task = asyncio.current_task()

    def absorbs(self) -> bool:
        """After a ``CancelledError`` out of a wait: True when this deadline caused it and nothing else asked
        for the task's cancellation (the cancellation is then withdrawn; raise ``error()``)."""
        task, self._fired_on = self._fired_on, None
        return task is not None and task.uncancel() == 0

    def error(self) -> UpstreamTimeoutError:
        timeouts = self._upstream.timeouts
        if self._first_bound:
            message = f"The upstream sent no event within {timeouts.first_event:g} seconds."
        else:
            message = f"The upstream call took longer than {timeouts.total:g} seconds."
        return UpstreamTimeoutError(message, upstream=self._upstream.name)

    def drain(self, seconds: float) -> None:
        """The answer is complete: what is left of the body gets ``seconds`` more (no longer than ``total``).
        PERF: the call's own timer moves, so the last read needs no timeout scope of its own."""
        self._handle.cancel()
        self._first_bound = False
        self.awaiting_first = False
        self._handle = self._loop.call_at(min(self._loop.time() + seconds, self._total_at), self._fire)

    def cancel(self) -> None:
        """The call is over: disarm the timer."""
        self._handle.cancel()
        self.task = None

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Awaits ``work`` (one upstream operation, no yields inside) under the deadline."""
        try:
            self.enter()
        except UpstreamTimeoutError:
            work.close()
            raise
        try:
            return await work
        except asyncio.CancelledError:
            if self.absorbs():
                raise self.error() from None
            raise
        finally:
            self.task = None

    def _fire(self) -> None:
        self.expired = True
        task = self.task
        # NOTE: a task already being cancelled is left alone: that cancellation ends the wait anyway, and
        # counting on a cancellation count of zero keeps a caller's own cancellation from being absorbed.
        if task is not None and not task.done() and not task.cancelling():
            self._fired_on = task
            task.cancel()
