"""The one path every chat request takes, streamed or not:

    route -> admit -> reserve quota -> attempt upstreams (failover before the first byte) -> finish

``start`` runs everything up to the upstream's answer (for a stream: its first event); ``finish`` settles
or releases the quota, frees every slot and writes the usage row, exactly once, however the request ended.
Each of those steps runs on its own, so one failing (or a cancellation arriving) never skips the others.

A caller that sends the answer itself (the HTTP layer) can take the usage row and the telemetry report to run
after its answer is out (``AfterAnswer``): they change nothing the next request is governed by, and at one
connection the time they take is then the client's, not the answer's (PERF, issue 10). The quota, the upstream
slot and the admission slots are always given back before ``finish`` returns.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

import attrs

from apipod.application.admit_request import Admission, AdmitRequest
from apipod.application.authenticate_key import Principal
from apipod.application.dispatch import Attempts, Dispatcher, Slot
from apipod.application.holds import run_each
from apipod.application.ports import REQUEST_NOTES, Clock, FinishedRequest, NoTelemetry, Telemetry
from apipod.application.record_usage import RecordUsage
from apipod.application.reserve_quota import ReserveQuota, prompt_chars
from apipod.application.route_model import RouteModel
from apipod.application.settings import GovernanceSettings
from apipod.application.wait_queue import WaitQueue
from apipod.domain.chat import ChatRequest, Usage
from apipod.domain.errors import (
    ApipodError,
    NoCapacityError,
    QuotaExceededError,
    RateLimitedError,
    UpstreamError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from apipod.domain.pricing import usage_cost
from apipod.domain.quota import CHARS_PER_TOKEN, Reservation, estimate_tokens
from apipod.domain.usage import AttemptOutcome, UsageStatus

T = TypeVar("T")

AfterAnswer = Callable[[Callable[[], Awaitable[None]]], None]
"""Takes a step to run once, after the caller's answer is out (e.g. ``RequestLifetime.on_close``)."""


@attrs.define
class ChatTurn:
    """One request's holds and timings, from admission to its usage row.

    Attributes:
        accounted: admitted, so the request gets a usage row (one refused by authentication, routing or the
            gateway's own limits gets none).
        first_event: monotonic time the upstream's first event (or whole answer) arrived.
    """

    principal: Principal
    request: ChatRequest
    request_id: str
    started: float
    admission: Admission = attrs.field(factory=Admission)
    attempts: Attempts | None = None
    reservation: Reservation | None = None
    slot: Slot | None = None
    input_estimate: int = 0
    accounted: bool = False
    first_event: float | None = None
    closed: bool = False


class ChatPipeline:
    def __init__(
        self,
        route: RouteModel,
        admit: AdmitRequest,
        quota: ReserveQuota,
        dispatcher: Dispatcher,
        record: RecordUsage,
        queue: WaitQueue,
        clock: Clock,
        settings: GovernanceSettings,
        telemetry: Telemetry = NoTelemetry(),
    ) -> None:
        self._telemetry = telemetry
        self._route = route
        self._admit = admit
        self._quota = quota
        self._dispatcher = dispatcher
        self._record = record
        self._queue = queue
        self._clock = clock
        self._output_cap = settings.estimate_output_cap
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Chat requests started and not yet finished (a gauge read when metrics are scraped)."""
        return self._in_flight

    async def start(
        self, principal: Principal, request: ChatRequest, request_id: str, call: Callable[[Slot], Awaitable[T]]
    ) -> tuple[ChatTurn, T]:
        """Run ``call`` on successive upstream slots until one answers. On success the caller owns the turn
        and must ``finish`` it; on any failure (cancellation included) the turn is finished here and the
        error raised."""
        turn = ChatTurn(principal=principal, request=request, request_id=request_id, started=self._clock.monotonic())
        self._in_flight += 1
        try:
            deadline = self._queue.deadline()
            candidates = await self._route.candidates(principal.plan, request.model)
            chars = prompt_chars(request)
            turn.input_estimate = max(1, chars // CHARS_PER_TOKEN)
            await self._admit.enter(principal, turn.admission, deadline)
            turn.accounted = True
            turn.reservation = await self._quota.execute(
                key_id=principal.key.id,
                plan=principal.plan,
                request=request,
                prices=[c.model.prices for c in candidates],
                chars=chars,
            )
            tokens = estimate_tokens(chars, request.max_output_tokens, output_cap=self._output_cap)
            turn.attempts = attempts = self._dispatcher.begin(candidates, tokens=tokens)
            while True:
                slot = await self._dispatcher.next_slot(attempts, deadline)
                try:
                    value = await call(slot)
                except UpstreamError as exc:
                    if isinstance(exc, UpstreamRejectedError):
                        turn.slot = slot
                        raise
                    await self._dispatcher.failed(attempts, slot, exc)
                    continue
                except BaseException:
                    turn.slot = slot
                    raise
                turn.slot = slot
                return turn, value
        except BaseException as exc:
            status, error = _ending(exc)
            if status is UsageStatus.QUOTA_EXCEEDED:
                self._telemetry.refused(principal.plan.name, "budget")
            await self.finish(turn, status=status, usage=None, error=error)
            raise

    async def finish(
        self,
        turn: ChatTurn,
        *,
        status: UsageStatus,
        usage: Usage | None,
        error: str | None = None,
        after_answer: AfterAnswer | None = None,
    ) -> None:
        """Settle (real usage) or release the quota, free the upstream slot and the admission slots, and
        write the usage row. Runs once per turn; every step runs even when another fails. With
        ``after_answer``, the usage row and the telemetry report are handed to it rather than run here."""
        if turn.closed:
            return
        turn.closed = True
        self._in_flight -= 1
        spent = usage is not None and usage.total_tokens > 0
        # In memory, at the routed model's prices of this moment; the row and the ledger get the same amount.
        cost = usage_cost(usage, turn.slot.call.model.prices) if usage is not None and turn.slot else _NO_COST

        async def quota() -> None:
            if spent:
                assert usage is not None
                await self._quota.settle(turn.reservation, usage, cost)
            else:
                await self._quota.release(turn.reservation)

        async def slot() -> None:
            if turn.slot is not None and turn.attempts is not None:
                await self._dispatcher.finished(
                    turn.attempts, turn.slot, usage, _OUTCOMES.get(status, AttemptOutcome.ERROR)
                )

        async def admission() -> None:
            await self._admit.leave(turn.admission)

        async def row() -> None:
            if turn.accounted:
                await self._record_row(turn, status, usage, error, cost)

        async def report() -> None:
            if turn.accounted:
                self._report(turn, status, usage)

        reports = (("recording usage", row), ("reporting telemetry", report))
        holds = (
            ("closing the quota reservation", quota),
            ("freeing the upstream slot", slot),
            ("freeing the admission slots", admission),
        )
        if after_answer is None:
            await run_each(holds + reports)
            return
        await run_each(holds)
        after_answer(functools.partial(run_each, reports))

    async def _record_row(
        self, turn: ChatTurn, status: UsageStatus, usage: Usage | None, error: str | None, cost: Decimal
    ) -> None:
        slot = turn.slot
        now = self._clock.monotonic()
        await self._record.execute(
            request_id=turn.request_id,
            key_id=turn.principal.key.id,
            user=turn.principal.key.name,
            requested_model=turn.request.model,
            routed_model=slot.call.model.name if slot else "",
            upstream=slot.call.label if slot else "",
            status=status,
            usage=usage or Usage(),
            latency_ms=(now - turn.started) * 1000,
            ttft_ms=(turn.first_event - turn.started) * 1000 if turn.first_event is not None else None,
            error=error,
            attempts=tuple(turn.attempts.log) if turn.attempts is not None else (),
            plan=turn.principal.plan.name,
            cost=cost,
        )

    def _report(self, turn: ChatTurn, status: UsageStatus, usage: Usage | None) -> None:
        """One telemetry call with everything the row has; also left in the request's notes for the access log."""
        slot = turn.slot
        request = turn.request
        plan = turn.principal.plan
        finished = FinishedRequest(
            request_id=turn.request_id,
            key_id=turn.principal.key.id,
            plan=plan.name,
            route=request.model if plan.alias(request.model) is not None else "default",
            requested_model=request.model,
            provider=slot.call.upstream.name if slot else "",
            model=slot.call.model.name if slot else "",
            account=slot.call.label if slot else "",
            status=status,
            usage=usage or _NO_USAGE,
            duration=self._clock.monotonic() - turn.started,
            ttft=turn.first_event - turn.started if turn.first_event is not None else None,
            attempts=tuple(turn.attempts.log) if turn.attempts is not None else (),
        )
        notes = REQUEST_NOTES.get()
        dialect = ""
        if notes is not None:
            notes.finished = finished
            dialect = notes.dialect
        self._telemetry.request_finished(finished, dialect)


_NO_USAGE = Usage()
_NO_COST = Decimal(0)

_OUTCOMES = {
    UsageStatus.SUCCESS: AttemptOutcome.SERVED,
    UsageStatus.CANCELLED: AttemptOutcome.CANCELLED,
    UsageStatus.UPSTREAM_ERROR: AttemptOutcome.UPSTREAM_ERROR,
    UsageStatus.REJECTED: AttemptOutcome.REJECTED,
}

_STATUSES: tuple[tuple[type[ApipodError], UsageStatus], ...] = (
    (UpstreamRejectedError, UsageStatus.REJECTED),
    (QuotaExceededError, UsageStatus.QUOTA_EXCEEDED),
    (NoCapacityError, UsageStatus.RATE_LIMITED),
    (RateLimitedError, UsageStatus.RATE_LIMITED),
    (UpstreamUnavailableError, UsageStatus.UPSTREAM_UNAVAILABLE),
)


def _ending(error: BaseException) -> tuple[UsageStatus, str]:
    """The usage row's status and error text for a request that ended in ``error`` before any output."""
    if isinstance(error, ApipodError):
        status = next((status for kind, status in _STATUSES if isinstance(error, kind)), UsageStatus.ERROR)
        return status, error.message
    return UsageStatus.CANCELLED, type(error).__name__
