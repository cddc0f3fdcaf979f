"""LiveState: what the gateway is doing now, for ``GET /admin/state``. Read on demand from the state the
request path keeps anyway (cooldowns in the LimitStore, the dispatcher's failure streaks, the wait queue,
the usage writer), so it costs the request path nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import attrs

from apipod.application.chat_pipeline import ChatPipeline
from apipod.application.dispatch import NO_ACCOUNT, Dispatcher
from apipod.application.ports import CatalogStore, Clock, LimitStore, UsageLog
from apipod.application.wait_queue import WaitQueue
from apipod.domain.catalog import Catalog
from apipod.domain.limits import LimitKind, account_cooldown, model_limit, pair_cooldown
from apipod.domain.usage import AttemptOutcome, UsageFilter

ERROR_RATE_WINDOW = timedelta(minutes=5)
ERROR_RATE_ROWS = 1000  # the newest rows of the window that are read


@attrs.frozen(kw_only=True)
class AccountState:
    """``health``: ``healthy``, ``cooling_down`` (``until``, ``reason``) or ``unhealthy`` (failed
    ``unhealthy_after`` times in a row; probed again when its cooldown ends). ``error_rate``: failed attempts
    over attempts made with this model and account in the last 5 minutes of usage rows (None: no attempt)."""

    upstream: str
    model: str
    account: int
    health: str
    until: datetime | None
    reason: str | None
    failures_in_a_row: int
    attempts: int
    error_rate: float | None


@attrs.frozen(kw_only=True)
class ModelState:
    model: str
    upstream: str
    in_flight: int | None  # held concurrency leases; None when the model has no concurrency limit
    accounts: tuple[AccountState, ...]


@attrs.frozen(kw_only=True)
class GatewayState:
    at: datetime
    in_flight: int  # this process's requests being served
    queue_depth: int  # this process's requests waiting for capacity
    usage_backlog: int  # usage rows accepted and not yet written
    error_window_seconds: float
    models: tuple[ModelState, ...]


class LiveState:
    def __init__(
        self,
        catalog: CatalogStore,
        limits: LimitStore,
        dispatcher: Dispatcher,
        queue: WaitQueue,
        pipeline: ChatPipeline,
        usage_log: UsageLog,
        clock: Clock,
    ) -> None:
        self._catalog = catalog
        self._limits = limits
        self._dispatcher = dispatcher
        self._queue = queue
        self._pipeline = pipeline
        self._usage_log = usage_log
        self._clock = clock

    async def execute(self) -> GatewayState:
        now = self._clock.now()
        catalog = await self._catalog.snapshot()
        tried, failed = await self._recent_attempts(now)
        models = tuple([await self._model(catalog, m.name, now, tried, failed) for m in catalog.models])
        return GatewayState(
            at=now,
            in_flight=self._pipeline.in_flight,
            queue_depth=self._queue.waiting,
            usage_backlog=self._usage_log.backlog(),
            error_window_seconds=ERROR_RATE_WINDOW.total_seconds(),
            models=models,
        )

    async def _recent_attempts(self, now: datetime) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
        page = await self._usage_log.search(UsageFilter(since=now - ERROR_RATE_WINDOW), limit=ERROR_RATE_ROWS)
        tried: Counter[tuple[str, str]] = Counter()
        failed: Counter[tuple[str, str]] = Counter()
        for row in page.rows:
            for attempt in row.attempts:
                if attempt.outcome is AttemptOutcome.SKIPPED:
                    continue
                tried[attempt.model, attempt.account] += 1
                if attempt.outcome in (AttemptOutcome.FAILED, AttemptOutcome.UPSTREAM_ERROR, AttemptOutcome.ERROR):
                    failed[attempt.model, attempt.account] += 1
        return tried, failed

    async def _model(
        self,
        catalog: Catalog,
        name: str,
        now: datetime,
        tried: Counter[tuple[str, str]],
        failed: Counter[tuple[str, str]],
    ) -> ModelState:
        model = next(m for m in catalog.models if m.name == name)
        upstream = next((u for u in catalog.upstreams if u.name == model.upstream), None)
        concurrency = model.limits.max_concurrency
        in_flight = await self._limits.held(model_limit(LimitKind.MODEL_CONCURRENCY, name)) if concurrency else None
        streaks = self._dispatcher.failure_streaks()
        accounts: list[AccountState] = []
        for account in (upstream.accounts or (NO_ACCOUNT,)) if upstream is not None else ():
            streak = streaks.get(f"{model.upstream}/{account.index}", 0)
            own = await self._limits.cooling(account_cooldown(model.upstream, account.index))
            pair = await self._limits.cooling(pair_cooldown(model.upstream, account.index, name))
            wait = max(own, pair)
            if wait <= 0:
                health, reason, until = "healthy", None, None
            else:
                until = now + timedelta(seconds=wait)
                if streak >= self._dispatcher.unhealthy_after:
                    health, reason = "unhealthy", f"failed {streak} times in a row"
                elif pair >= own:
                    health, reason = "cooling_down", "rate limited by the upstream"
                else:
                    health, reason = "cooling_down", f"failed {streak} time(s) in a row" if streak else "failed"
            key = (name, f"{model.upstream}/{account.label}")
            attempts = tried[key]
            accounts.append(
                AccountState(
                    upstream=model.upstream,
                    model=name,
                    account=account.index,
                    health=health,
                    until=until,
                    reason=reason,
                    failures_in_a_row=streak,
                    attempts=attempts,
                    error_rate=failed[key] / attempts if attempts else None,
                )
            )
        return ModelState(model=name, upstream=model.upstream, in_flight=in_flight, accounts=tuple(accounts))
