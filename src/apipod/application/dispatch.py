"""The dispatcher: turns a request's candidates into upstream calls, one attempt at a time.

Each attempt screens what is left (over its rate limits, at its concurrency limit, every account resting:
set aside), picks by weight among the rest, rotates the upstream's accounts and takes the model's slot.
When an attempt fails before the first byte, what failed rests (honouring the upstream's Retry-After) and
the next attempt goes elsewhere. When everything is only limited, the request waits in the ``WaitQueue``.

The per-request state is a plain record (``Attempts``); the rules and the process-wide state (account
rotation, failure streaks) are the ``Dispatcher``'s.
"""

from __future__ import annotations

import math

import attrs

from apipod.application.holds import Lease, release_all
from apipod.application.ports import (
    LimitStore,
    NoTelemetry,
    Randomness,
    Telemetry,
    UpstreamCall,
    UpstreamClient,
    UpstreamRegistry,
)
from apipod.application.route_model import Candidate
from apipod.application.settings import GovernanceSettings
from apipod.application.wait_queue import Busy, WaitQueue
from apipod.domain.catalog import Account
from apipod.domain.chat import Usage
from apipod.domain.errors import (
    NoCapacityError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)
from apipod.domain.limits import LimitKind, account_cooldown, model_limit, pair_cooldown
from apipod.domain.routing import weighted_pick
from apipod.domain.usage import Attempt, AttemptOutcome

MINUTE = 60.0
DAY = 86_400.0
NO_ACCOUNT = Account(0, "")
CONCURRENCY_RETRY = 1.0
_RATE_WINDOWS = ((LimitKind.MODEL_RPM, "rpm", MINUTE), (LimitKind.MODEL_RPD, "rpd", DAY))


@attrs.define
class Slot:
    """One attempt in flight: where it goes and the leases it holds until it ends."""

    candidate: Candidate
    call: UpstreamCall
    client: UpstreamClient
    leases: list[Lease] = attrs.field(factory=list)
    tokens_counted: int = 0


@attrs.define
class Attempts:
    """One request's attempts: what is left to try, which accounts failed it, and the log for its usage row.

    Attributes:
        limited: something set aside will serve later (a limit or a cooldown), so running out is a 429, not
            a 503.
        soonest: the earliest known moment a limited candidate frees up.
        polling: a candidate is at its concurrency limit, which frees whenever a request ends.
    """

    candidates: tuple[Candidate, ...]
    tokens: int
    remaining: list[Candidate]
    failed_accounts: set[tuple[str, int]] = attrs.field(factory=set)
    count: int = 0
    limited: bool = False
    soonest: float = math.inf
    polling: bool = False
    last_error: UpstreamError | None = None
    log: list[Attempt] = attrs.field(factory=list)

    def reconsider(self) -> None:
        """Screen every candidate again (after waiting); failed accounts stay excluded and the attempt
        count keeps growing."""
        self.remaining = list(self.candidates)
        self.limited = self.polling = False
        self.soonest = math.inf


class Dispatcher:
    """Shared by every request of a process; holds the account rotation and failure streaks."""

    def __init__(
        self,
        registry: UpstreamRegistry,
        limits: LimitStore,
        randomness: Randomness,
        queue: WaitQueue,
        settings: GovernanceSettings,
        telemetry: Telemetry = NoTelemetry(),
    ) -> None:
        self._registry = registry
        self._telemetry = telemetry
        self._limits = limits
        self._randomness = randomness
        self._queue = queue
        self._settings = settings
        self._turn: dict[str, int] = {}
        self._streaks: dict[str, int] = {}

    def resting(self) -> tuple[int, int]:
        """Accounts cooling down after failures, and of those the ones marked unhealthy (read when metrics
        are scraped; this process's view)."""
        unhealthy = sum(1 for streak in self._streaks.values() if streak >= self._settings.unhealthy_after_failures)
        return len(self._streaks), unhealthy

    def failure_streaks(self) -> dict[str, int]:
        """A copy of the consecutive failures per account (``"upstream/index"``), for ``GET /admin/state``;
        an account is absent once it served again. This process's view; read-only."""
        return dict(self._streaks)

    @property
    def unhealthy_after(self) -> int:
        return self._settings.unhealthy_after_failures

    def begin(self, candidates: list[Candidate], *, tokens: int) -> Attempts:
        return Attempts(candidates=tuple(candidates), tokens=tokens, remaining=list(candidates))

    async def next_slot(self, attempts: Attempts, deadline: float) -> Slot:
        """The next slot, waiting in the queue while every candidate is only limited. Raises NoCapacityError
        (429) or UpstreamUnavailableError (503) when nothing can serve."""

        async def step() -> Slot:
            try:
                return await self._pick(attempts)
            except NoCapacityError as exc:
                retry_after = None if attempts.polling else exc.retry_after
                attempts.reconsider()
                raise Busy(retry_after, exc) from None

        return await self._queue.run(step, deadline)

    async def failed(self, attempts: Attempts, slot: Slot, error: UpstreamError) -> None:
        """The attempt failed before the first byte: free the slot and rest what failed."""
        await self._end(slot)
        await self._rest(slot.call, error)
        attempts.last_error = error
        if isinstance(error, UpstreamRateLimitedError):
            # A rate-limited pair is kept out by its cooldown only, so a queued request may use it again.
            attempts.limited = True
            attempts.soonest = min(attempts.soonest, error.retry_after or self._settings.rate_limit_cooldown)
        else:
            attempts.failed_accounts.add((slot.call.upstream.name, slot.call.account.index))
        reason = type(error).__name__
        attempts.log.append(_logged(slot, AttemptOutcome.FAILED, reason))
        self._telemetry.failover(slot.call.upstream.name, slot.call.model.name, reason)

    async def finished(self, attempts: Attempts, slot: Slot, usage: Usage | None, outcome: AttemptOutcome) -> None:
        """The attempt reached the client (successfully or not): free the slot, count the real tokens."""
        attempts.log.append(_logged(slot, outcome))
        self._streaks.pop(_account_name(slot.call), None)
        tpm = slot.candidate.model.limits.tpm
        try:
            if tpm is not None and usage is not None and usage.total_tokens > slot.tokens_counted:
                # Count the excess over the estimate unconditionally: the tokens were spent.
                await self._limits.hit(
                    model_limit(LimitKind.MODEL_TPM, slot.candidate.model.name),
                    limit=2**62,
                    window=MINUTE,
                    cost=usage.total_tokens - slot.tokens_counted,
                )
        finally:
            await self._end(slot)

    async def _pick(self, attempts: Attempts) -> Slot:
        while attempts.remaining and attempts.count < self._settings.max_attempts:
            eligible: list[tuple[tuple[Candidate, Account], float]] = []
            for candidate in list(attempts.remaining):
                account = await self._screen(attempts, candidate)
                if account is not None:
                    eligible.append(((candidate, account), candidate.weight))
            if not eligible:
                break
            candidate, account = weighted_pick(eligible, self._randomness.random())
            slot = await self._take(attempts, candidate, account)
            if slot is not None:
                attempts.count += 1
                return slot
        raise self._exhausted(attempts)

    async def _screen(self, attempts: Attempts, candidate: Candidate) -> Account | None:
        """The account to call the candidate with, or None (and the candidate set aside, with why)."""
        wait, label = await self._rate_wait(candidate, attempts.tokens, count=False)
        if wait:
            _set_aside(attempts, candidate, f"limited: {label}", wait)
            return None
        concurrency = self._concurrency(candidate)
        conc_key = model_limit(LimitKind.MODEL_CONCURRENCY, candidate.model.name)
        if concurrency is not None and await self._limits.held(conc_key) >= concurrency:
            _set_aside(attempts, candidate, "limited: max_concurrency", None)
            return None
        account, wait = await self._free_account(candidate, attempts.failed_accounts)
        if account is None:
            _set_aside(attempts, candidate, "cooling down" if wait != math.inf else "no account left", wait)
        return account

    async def _take(self, attempts: Attempts, candidate: Candidate, account: Account) -> Slot | None:
        """Count the attempt against the candidate's limits; None (and set aside) if it lost a race."""
        leases: list[Lease] = []
        concurrency = self._concurrency(candidate)
        if concurrency is not None:
            key = model_limit(LimitKind.MODEL_CONCURRENCY, candidate.model.name)
            lease = await self._limits.acquire(key, limit=concurrency, lease=self._settings.reservation_ttl)
            if lease is None:
                _set_aside(attempts, candidate, "limited: max_concurrency", None)
                return None
            leases.append(Lease(key, lease))
        try:
            wait, label = await self._rate_wait(candidate, attempts.tokens, count=True)
        except BaseException:
            await release_all(self._limits, leases)
            raise
        if wait:
            await release_all(self._limits, leases)
            _set_aside(attempts, candidate, f"limited: {label}", wait)
            return None
        call = UpstreamCall(upstream=candidate.upstream, account=account, model=candidate.model)
        client = self._registry.client_for(candidate.upstream)
        return Slot(candidate=candidate, call=call, client=client, leases=leases, tokens_counted=attempts.tokens)

    async def _free_account(self, candidate: Candidate, failed: set[tuple[str, int]]) -> tuple[Account | None, float]:
        """The next account of the candidate's upstream in turn that is not resting, and otherwise the
        seconds until one is free (infinite when every account failed this request)."""
        upstream = candidate.upstream
        accounts = upstream.accounts or (NO_ACCOUNT,)
        start = self._turn.get(upstream.name, 0)
        soonest = math.inf
        for offset in range(len(accounts)):
            account = accounts[(start + offset) % len(accounts)]
            if (upstream.name, account.index) in failed:
                continue
            wait = max(
                await self._limits.cooling(account_cooldown(upstream.name, account.index)),
                await self._limits.cooling(pair_cooldown(upstream.name, account.index, candidate.model.name)),
            )
            if wait <= 0:
                self._turn[upstream.name] = (start + offset + 1) % len(accounts)
                return account, 0.0
            soonest = min(soonest, wait)
        return None, soonest

    async def _rate_wait(self, candidate: Candidate, tokens: int, *, count: bool) -> tuple[float, str]:
        """Seconds until the model's rate limits admit one more request (0: now), and which limit.
        With ``count`` the request is counted against each window it fits in."""
        limits = candidate.model.limits
        if limits.rpm is None and limits.rpd is None and limits.tpm is None:
            return 0.0, ""  # PERF: the common case, a model without rate limits: nothing to ask the store
        name = candidate.model.name
        check = self._limits.hit if count else self._limits.peek
        for kind, label, window in _RATE_WINDOWS:
            limit = limits.rpm if kind is LimitKind.MODEL_RPM else limits.rpd
            if limit is not None:
                wait = await check(model_limit(kind, name), limit=limit, window=window)
                if wait is not None:
                    return wait, label
        if limits.tpm is not None:
            cost = min(tokens, limits.tpm)
            wait = await check(model_limit(LimitKind.MODEL_TPM, name), limit=limits.tpm, window=MINUTE, cost=cost)
            if wait is not None:
                return wait, "tpm"
        return 0.0, ""

    def _concurrency(self, candidate: Candidate) -> int | None:
        return candidate.model.limits.max_concurrency or self._settings.model_concurrency_limit

    async def _rest(self, call: UpstreamCall, error: UpstreamError) -> None:
        settings = self._settings
        if isinstance(error, UpstreamRateLimitedError):
            seconds = error.retry_after or settings.rate_limit_cooldown
            pair = pair_cooldown(call.upstream.name, call.account.index, call.model.name)
            await self._limits.cool_down(pair, seconds)
            return
        name = _account_name(call)
        streak = self._streaks.get(name, 0) + 1
        self._streaks[name] = streak
        if isinstance(error, UpstreamAuthError):
            seconds = settings.auth_failure_cooldown
        elif streak >= settings.unhealthy_after_failures:
            seconds = settings.unhealthy_cooldown  # marked unhealthy; probed again when this runs out
        else:
            seconds = error.retry_after or settings.failure_cooldown
        await self._limits.cool_down(account_cooldown(call.upstream.name, call.account.index), seconds)

    async def _end(self, slot: Slot) -> None:
        leases, slot.leases = slot.leases, []
        await release_all(self._limits, leases)

    def _exhausted(self, attempts: Attempts) -> Exception:
        if attempts.limited or attempts.polling:
            # A full concurrency limit frees whenever a request ends: a second is a fair guess.
            wait = min(attempts.soonest, CONCURRENCY_RETRY) if attempts.polling else attempts.soonest
            return NoCapacityError(
                "Every upstream model for this request is at its limit or cooling down; retry later.",
                retry_after=max(wait, 0.001),
            )
        # Never the upstream's own words: they may describe apipod's account (the operator has them in the log).
        upstream = attempts.last_error.upstream if attempts.last_error is not None else ""
        return UpstreamUnavailableError("No upstream could serve the request; retry later.", upstream=upstream)


def _account_name(call: UpstreamCall) -> str:
    return f"{call.upstream.name}/{call.account.index}"


def _logged(slot: Slot, outcome: AttemptOutcome, reason: str = "") -> Attempt:
    return Attempt(model=slot.call.model.name, account=slot.call.label, outcome=outcome, reason=reason)


def _set_aside(attempts: Attempts, candidate: Candidate, reason: str, wait: float | None) -> None:
    """``wait``: seconds until it may serve again; None when unknown (a concurrency limit); infinite when
    it never will for this request (every account failed)."""
    attempts.remaining.remove(candidate)
    if wait is None:
        attempts.polling = True
    elif wait != math.inf:
        attempts.limited = True
        attempts.soonest = min(attempts.soonest, wait)
    attempts.log.append(Attempt(model=candidate.model.name, account="", outcome=AttemptOutcome.SKIPPED, reason=reason))
