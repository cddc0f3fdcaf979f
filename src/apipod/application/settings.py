"""Knobs of the governance engine. Plain values, so every entrypoint and embedding can set them."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class GovernanceSettings:
    """Attributes:
    reservation_ttl: seconds a quota hold or concurrency lease lives unless settled (a crashed process's
        holds come back after this).
    max_attempts: candidates tried for one request before giving up (failover before the first byte).
    max_concurrent_requests: gateway-wide concurrent requests (None: unlimited).
    model_concurrency_limit: default max concurrency of an upstream model without its own limit.
    queue_wait_seconds: how long a request waits for a free slot before its 429.
    max_queue: requests allowed to wait at once per process; more are refused at once.
    key_cache_ttl: seconds a key lookup is trusted; revocation takes effect within this.
    """

    reservation_ttl: float = 600.0
    max_attempts: int = 3
    max_concurrent_requests: int | None = None
    model_concurrency_limit: int | None = None
    queue_wait_seconds: float = 10.0
    max_queue: int = 1000
    key_cache_ttl: float = 1.0
    touch_interval: float = 60.0
    estimate_output_cap: int = 4096
    rate_limit_cooldown: float = 30.0
    failure_cooldown: float = 5.0
    auth_failure_cooldown: float = 300.0
    unhealthy_after_failures: int = 3
    unhealthy_cooldown: float = 60.0
