"""RecordUsage: one usage row per request that got past authentication."""

from __future__ import annotations

import logging
from decimal import Decimal

from apipod.application.ports import Clock, UsageLog
from apipod.domain.chat import Usage
from apipod.domain.errors import ApipodError
from apipod.domain.usage import Attempt, UsageRecord, UsageStatus

log = logging.getLogger("apipod.usage")


class RecordUsage:
    """Rules: never raises into the request (the answer is already given); a store failure is logged
    loudly, and the store adapter itself is responsible for retrying and not dropping rows."""

    def __init__(self, usage_log: UsageLog, clock: Clock) -> None:
        self._log = usage_log
        self._clock = clock

    async def execute(
        self,
        *,
        request_id: str,
        key_id: str,
        user: str,
        requested_model: str,
        routed_model: str,
        upstream: str,
        status: UsageStatus,
        usage: Usage,
        latency_ms: float,
        ttft_ms: float | None = None,
        error: str | None = None,
        attempts: tuple[Attempt, ...] = (),
        plan: str = "",
        cost: Decimal = Decimal(0),
    ) -> None:
        """``cost``: at the routed model's prices now (later price changes never rewrite the row)."""
        record = UsageRecord(
            request_id=request_id,
            key_id=key_id,
            user=user,
            requested_model=requested_model,
            routed_model=routed_model,
            upstream=upstream,
            status=status,
            usage=usage,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            error=error,
            timestamp=self._clock.now(),
            attempts=attempts,
            plan=plan,
            cost=cost,
        )
        try:
            await self._log.record(record)
        except ApipodError as exc:
            log.error("usage row for request %s not recorded: %s", request_id, exc.message)
