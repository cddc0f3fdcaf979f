"""AdmitRequest: the gateway's own limits, checked before any upstream work.

Gateway-wide concurrency (``MAX_CONCURRENT_REQUESTS``), and per plan: requests per minute and concurrent
requests per key. A request that finds no free concurrency slot waits in a bounded queue for up to
``queue_wait_seconds``, then gets a RateLimitedError with the time to retry.
"""

from __future__ import annotations

import asyncio

import attrs

from apipod.application.authenticate_key import Principal
from apipod.application.ports import LimitStore
from apipod.application.settings import GovernanceSettings
from apipod.domain.errors import RateLimitedError

GATEWAY_KEY = "conc:gateway"
POLL_INITIAL = 0.005
POLL_MAX = 0.1


@attrs.define
class Admission:
    leases: list[tuple[str, str]] = attrs.field(factory=list)


class AdmitRequest:
    def __init__(self, limits: LimitStore, settings: GovernanceSettings) -> None:
        self._limits = limits
        self._settings = settings
        self._waiting = 0

    async def enter(self, principal: Principal) -> Admission:
        admission = Admission()
        plan = principal.plan
        if plan.rpm is not None:
            wait = await self._limits.hit(f"rpm:key:{principal.key.id}", limit=plan.rpm, window=60.0)
            if wait is not None:
                raise RateLimitedError(
                    f"This key is limited to {plan.rpm} requests per minute; retry in {wait:.1f} s.",
                    retry_after=wait,
                )
        try:
            if plan.max_concurrency is not None:
                await self._slot(admission, f"conc:key:{principal.key.id}", plan.max_concurrency, "this key")
            if self._settings.max_concurrent_requests is not None:
                await self._slot(admission, GATEWAY_KEY, self._settings.max_concurrent_requests, "the gateway")
        except BaseException:
            await self.leave(admission)
            raise
        return admission

    async def leave(self, admission: Admission) -> None:
        """Free every slot the request holds. Idempotent."""
        leases, admission.leases = admission.leases, []
        for key, lease_id in leases:
            await self._limits.release(key, lease_id)

    async def _slot(self, admission: Admission, key: str, limit: int, holder: str) -> None:
        ttl = self._settings.reservation_ttl
        lease = await self._limits.acquire(key, limit=limit, lease=ttl)
        if lease is None:
            lease = await self._queue(key, limit, holder)
        admission.leases.append((key, lease))

    async def _queue(self, key: str, limit: int, holder: str) -> str:
        settings = self._settings
        if self._waiting >= settings.max_queue or settings.queue_wait_seconds <= 0:
            raise RateLimitedError(f"Too many concurrent requests for {holder}.", retry_after=1.0)
        self._waiting += 1
        try:
            # The event loop's clock, not the Clock port: waiting is real time even under a fake clock.
            loop = asyncio.get_running_loop()
            deadline = loop.time() + settings.queue_wait_seconds
            pause = POLL_INITIAL
            while loop.time() < deadline:
                await asyncio.sleep(pause)
                lease = await self._limits.acquire(key, limit=limit, lease=settings.reservation_ttl)
                if lease is not None:
                    return lease
                pause = min(pause * 2, POLL_MAX)
        finally:
            self._waiting -= 1
        raise RateLimitedError(
            f"Too many concurrent requests for {holder}; waited {settings.queue_wait_seconds:.0f} s for a slot.",
            retry_after=1.0,
        )
