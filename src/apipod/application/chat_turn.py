"""What CompleteChat and StreamChat share: the steps before the first upstream byte, and the books after."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs

from apipod.application.admit_request import Admission, AdmitRequest
from apipod.application.authenticate_key import Principal
from apipod.application.dispatch import Dispatcher, DispatchSession, Slot
from apipod.application.ports import Clock, IdGenerator
from apipod.application.record_usage import RecordUsage
from apipod.application.reserve_quota import ReserveQuota, prompt_chars
from apipod.application.route_model import RouteModel
from apipod.application.settings import GovernanceSettings
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
from apipod.domain.quota import CHARS_PER_TOKEN, Reservation, estimate_tokens

T = TypeVar("T")

QUEUE_POLL_INITIAL = 0.005
QUEUE_POLL_MAX = 0.1
CONCURRENCY_HINT = 1.0  # the retry-after the dispatcher gives for a full concurrency limit: poll instead


@attrs.define
class ChatTurn:
    """One request's state from admission to the usage row."""

    principal: Principal
    request: ChatRequest
    request_id: str
    started: float
    admission: Admission
    session: DispatchSession
    input_estimate: int = 0
    reservation: Reservation | None = None
    slot: Slot | None = None
    closed: bool = False


class ChatTurns:
    """Opens turns (route, admit, reserve), runs attempts with failover, and closes the books once."""

    def __init__(
        self,
        route: RouteModel,
        admit: AdmitRequest,
        quota: ReserveQuota,
        dispatcher: Dispatcher,
        record: RecordUsage,
        clock: Clock,
        ids: IdGenerator,
        settings: GovernanceSettings,
    ) -> None:
        self._route = route
        self._admit = admit
        self._quota = quota
        self._dispatcher = dispatcher
        self._record = record
        self._clock = clock
        self._ids = ids
        self._settings = settings
        self._waiting = 0

    async def open(self, principal: Principal, request: ChatRequest) -> ChatTurn:
        started = self._clock.monotonic()
        request_id = self._ids.new_id("req_")
        candidates = self._route.order(await self._route.candidates(principal.plan, request.model))
        chars = prompt_chars(request)
        tokens = estimate_tokens(chars, request.max_output_tokens, output_cap=self._settings.estimate_output_cap)
        admission = await self._admit.enter(principal)
        turn = ChatTurn(
            principal=principal,
            request=request,
            request_id=request_id,
            started=started,
            admission=admission,
            session=self._dispatcher.session(candidates, tokens=tokens),
            input_estimate=max(1, chars // CHARS_PER_TOKEN),
        )
        try:
            turn.reservation = await self._quota.execute(key_id=principal.key.id, plan=principal.plan, request=request)
        except ApipodError as exc:
            await self.close(turn, status=_status_of(exc), usage=None, error=exc.message)
            raise
        except BaseException:
            await self._admit.leave(admission)
            raise
        return turn

    async def attempt(self, turn: ChatTurn, call: Callable[[Slot], Awaitable[T]]) -> T:
        """Run ``call`` on successive slots until one succeeds; fail over on upstream errors that are not
        the caller's fault. On a final failure the turn is closed and the error raised."""
        while True:
            try:
                slot = await self._next_slot(turn)
            except ApipodError as exc:
                await self.close(turn, status=_status_of(exc), usage=None, error=exc.message)
                raise
            try:
                value = await call(slot)
            except UpstreamRejectedError as exc:
                turn.slot = slot
                await self.close(turn, status="rejected", usage=None, error=exc.message)
                raise
            except UpstreamError as exc:
                await turn.session.failed(slot, exc)
                continue
            except BaseException as exc:
                turn.slot = slot
                await self.close(turn, status="cancelled", usage=None, error=type(exc).__name__)
                raise
            turn.slot = slot
            return value

    async def _next_slot(self, turn: ChatTurn) -> Slot:
        """The next slot; when every candidate is limited, wait in the bounded queue for the first to free
        up, as long as that is within ``queue_wait_seconds`` of the request's start."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.queue_wait_seconds
        pause = QUEUE_POLL_INITIAL
        while True:
            try:
                return await turn.session.next()
            except NoCapacityError as exc:
                left = deadline - loop.time()
                if left <= 0 or exc.retry_after > left or self._waiting >= self._settings.max_queue:
                    raise
                wait = exc.retry_after if exc.retry_after < CONCURRENCY_HINT else min(pause, left)
                pause = min(pause * 2, QUEUE_POLL_MAX)
                self._waiting += 1
                try:
                    await asyncio.sleep(wait)
                finally:
                    self._waiting -= 1
                turn.session.reconsider()

    async def close(
        self,
        turn: ChatTurn,
        *,
        status: str,
        usage: Usage | None,
        error: str | None = None,
        ttft: float | None = None,
    ) -> None:
        """Settle or release the quota, free every slot and write the usage row. Runs once per turn."""
        if turn.closed:
            return
        turn.closed = True
        try:
            if usage is not None and usage.total_tokens > 0:
                await self._quota.settle(turn.reservation, usage)
            else:
                await self._quota.release(turn.reservation)
        finally:
            if turn.slot is not None:
                await turn.session.finished(turn.slot, usage, outcome="served" if status == "success" else status)
            await self._admit.leave(turn.admission)
            now = self._clock.monotonic()
            slot = turn.slot
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
                ttft_ms=(ttft - turn.started) * 1000 if ttft is not None else None,
                error=error,
                attempts=tuple(turn.session.log),
            )


_STATUSES: tuple[tuple[type[ApipodError], str], ...] = (
    (QuotaExceededError, "quota_exceeded"),
    (NoCapacityError, "rate_limited"),
    (RateLimitedError, "rate_limited"),
    (UpstreamUnavailableError, "upstream_unavailable"),
)


def _status_of(error: ApipodError) -> str:
    """The usage row's status for a request that ended in ``error`` before any output."""
    return next((status for kind, status in _STATUSES if isinstance(error, kind)), "error")
