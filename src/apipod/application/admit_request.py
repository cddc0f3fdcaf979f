"""AdmitRequest: the gateway's own limits, checked before any upstream work.

Gateway-wide concurrency (``MAX_CONCURRENT_REQUESTS``), and per plan: requests per minute and concurrent
requests per key. A request that finds no free concurrency slot waits in the process's ``WaitQueue`` until
its deadline, then gets a RateLimitedError with the time to retry.
"""

from __future__ import annotations

import attrs

from apipod.application.authenticate_key import Principal
from apipod.application.holds import Lease, release_all
from apipod.application.ports import LimitStore, NoTelemetry, Telemetry
from apipod.application.settings import GovernanceSettings
from apipod.application.wait_queue import Busy, WaitQueue
from apipod.domain.errors import RateLimitedError
from apipod.domain.limits import GATEWAY_CONCURRENCY, LimitKey, key_concurrency, key_rpm


@attrs.define
class Admission:
    """The concurrency slots one request holds until it ends."""

    leases: list[Lease] = attrs.field(factory=list)


class AdmitRequest:
    def __init__(
        self,
        limits: LimitStore,
        queue: WaitQueue,
        settings: GovernanceSettings,
        telemetry: Telemetry = NoTelemetry(),
    ) -> None:
        self._telemetry = telemetry
        self._limits = limits
        self._queue = queue
        self._settings = settings

    async def enter(self, principal: Principal, admission: Admission, deadline: float) -> None:
        """Take the request's slots into ``admission`` (which the caller releases however the request ends,
        also when this raises half-way)."""
        plan = principal.plan
        if plan.rpm is not None:
            wait = await self._limits.hit(key_rpm(principal.key.id), limit=plan.rpm, window=60.0)
            if wait is not None:
                self._telemetry.refused(plan.name, "key_rpm")
                raise RateLimitedError(
                    f"This key is limited to {plan.rpm} requests per minute; retry in {wait:.1f} s.",
                    retry_after=wait,
                )
        if plan.max_concurrency is not None:
            await self._slot(admission, key_concurrency(principal.key.id), plan.max_concurrency, "this key", deadline)
        if self._settings.max_concurrent_requests is not None:
            limit = self._settings.max_concurrent_requests
            await self._slot(admission, GATEWAY_CONCURRENCY, limit, "the gateway", deadline)

    async def leave(self, admission: Admission) -> None:
        """Free every slot the request holds, each on its own (one failing release skips none). Idempotent."""
        leases, admission.leases = admission.leases, []
        await release_all(self._limits, leases)

    async def _slot(self, admission: Admission, key: LimitKey, limit: int, holder: str, deadline: float) -> None:
        ttl = self._settings.reservation_ttl
        full = RateLimitedError(f"Too many concurrent requests for {holder}; retry shortly.", retry_after=1.0)

        async def take() -> str:
            lease = await self._limits.acquire(key, limit=limit, lease=ttl)
            if lease is None:
                raise Busy(None, full)
            return lease

        admission.leases.append(Lease(key, await self._queue.run(take, deadline)))
