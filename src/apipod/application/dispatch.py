"""The dispatcher: turns ordered candidates into upstream calls, one attempt at a time.

It sets aside candidates that are over their limits, cooling down or at their concurrency limit; picks by
weight among the rest; rotates each upstream's accounts; and, when an attempt fails before the first byte,
rests what failed (honouring the upstream's Retry-After) so the next attempt goes elsewhere.
"""

from __future__ import annotations

import attrs

from apipod.application.ports import LimitStore, Randomness, UpstreamCall, UpstreamClient, UpstreamRegistry
from apipod.application.route_model import Candidate
from apipod.application.settings import GovernanceSettings
from apipod.domain.catalog import Account
from apipod.domain.chat import Usage
from apipod.domain.errors import (
    NoCapacityError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)
from apipod.domain.routing import weighted_pick
from apipod.domain.usage import Attempt

MINUTE = 60.0
DAY = 86_400.0
NO_ACCOUNT = Account(0, "")


@attrs.define
class Slot:
    """One attempt in flight: where it goes and the leases it holds until it ends."""

    candidate: Candidate
    call: UpstreamCall
    client: UpstreamClient
    leases: list[tuple[str, str]] = attrs.field(factory=list)
    tokens_counted: int = 0


def _cool_account(call: UpstreamCall) -> str:
    return f"cool:{call.upstream.name}/{call.account.index}"


def _cool_pair(upstream: str, account: int, model: str) -> str:
    return f"cool:{upstream}/{account}:{model}"


class Dispatcher:
    """Shared by every request of a process; holds the account rotation and failure streaks."""

    def __init__(
        self, registry: UpstreamRegistry, limits: LimitStore, randomness: Randomness, settings: GovernanceSettings
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._randomness = randomness
        self._settings = settings
        self._turn: dict[str, int] = {}
        self._streaks: dict[str, int] = {}

    def session(self, candidates: list[Candidate], *, tokens: int) -> DispatchSession:
        return DispatchSession(self, candidates, tokens)

    async def _free_account(self, candidate: Candidate, tried: set[tuple[str, int]]) -> tuple[Account | None, float]:
        """The next account of the candidate's upstream in turn that is not resting, and otherwise the
        seconds until one is free."""
        upstream = candidate.upstream
        accounts = upstream.accounts or (NO_ACCOUNT,)
        start = self._turn.get(upstream.name, 0)
        soonest = float("inf")
        for offset in range(len(accounts)):
            account = accounts[(start + offset) % len(accounts)]
            if (upstream.name, account.index) in tried:
                continue
            wait = max(
                await self._limits.cooling(f"cool:{upstream.name}/{account.index}"),
                await self._limits.cooling(_cool_pair(upstream.name, account.index, candidate.model.name)),
            )
            if wait <= 0:
                self._turn[upstream.name] = (start + offset + 1) % len(accounts)
                return account, 0.0
            soonest = min(soonest, wait)
        return None, soonest

    async def _limit_wait(self, candidate: Candidate, tokens: int, *, count: bool) -> tuple[float, str]:
        """Seconds until the model's rate limits admit one more request (0: now), and which limit.

        With ``count`` the request is counted against each window it fits in."""
        limits = candidate.model.limits
        name = candidate.model.name
        check = self._limits.hit if count else self._limits.peek
        for label, limit, window, cost in (
            ("rpm", limits.rpm, MINUTE, 1),
            ("rpd", limits.rpd, DAY, 1),
            ("tpm", limits.tpm, MINUTE, min(tokens, limits.tpm or tokens)),
        ):
            if limit is None:
                continue
            wait = await check(f"{label}:{name}", limit=limit, window=window, cost=cost)
            if wait is not None:
                return wait, label
        return 0.0, ""

    def _concurrency(self, candidate: Candidate) -> int | None:
        return candidate.model.limits.max_concurrency or self._settings.model_concurrency_limit

    async def _rest(self, call: UpstreamCall, error: UpstreamError) -> None:
        settings = self._settings
        account_key = f"{call.upstream.name}/{call.account.index}"
        if isinstance(error, UpstreamRateLimitedError):
            seconds = error.retry_after or settings.rate_limit_cooldown
            await self._limits.cool_down(_cool_pair(call.upstream.name, call.account.index, call.model.name), seconds)
            return
        streak = self._streaks.get(account_key, 0) + 1
        self._streaks[account_key] = streak
        if isinstance(error, UpstreamAuthError):
            seconds = settings.auth_failure_cooldown
        elif streak >= settings.unhealthy_after_failures:
            seconds = settings.unhealthy_cooldown  # marked unhealthy; probed again when this runs out
        else:
            seconds = error.retry_after or settings.failure_cooldown
        await self._limits.cool_down(_cool_account(call), seconds)

    def _healthy(self, call: UpstreamCall) -> None:
        self._streaks.pop(f"{call.upstream.name}/{call.account.index}", None)


class DispatchSession:
    """The attempts of one request. ``next()`` gives the next slot or raises when nothing can serve."""

    def __init__(self, dispatcher: Dispatcher, candidates: list[Candidate], tokens: int) -> None:
        self._d = dispatcher
        self._candidates = list(candidates)
        self._remaining = list(candidates)
        self._tokens = tokens
        self._tried_accounts: set[tuple[str, int]] = set()
        self._attempts = 0
        self._soonest = float("inf")
        self._limited = False
        self._last_error: UpstreamError | None = None
        self.log: list[Attempt] = []

    def reconsider(self) -> None:
        """Screen every candidate again (after waiting for a limit to free up); accounts that failed this
        request stay excluded, and the attempt count keeps growing."""
        self._remaining = list(self._candidates)
        self._limited = False
        self._soonest = float("inf")

    async def next(self) -> Slot:
        d = self._d
        while self._remaining and self._attempts < d._settings.max_attempts:
            eligible: list[tuple[Candidate, Account]] = []
            for candidate in list(self._remaining):
                reason, wait, account = await self._screen(candidate)
                if reason:
                    self._set_aside(candidate, reason, wait)
                elif account is not None:
                    eligible.append((candidate, account))
            if not eligible:
                break
            candidate, account = weighted_pick([(pair, pair[0].weight) for pair in eligible], d._randomness.random())
            slot = await self._take(candidate, account)
            if slot is not None:
                self._attempts += 1
                return slot
        raise self._exhausted()

    async def _screen(self, candidate: Candidate) -> tuple[str, float, Account | None]:
        d = self._d
        wait, label = await d._limit_wait(candidate, self._tokens, count=False)
        if wait:
            return f"limited: {label}", wait, None
        concurrency = d._concurrency(candidate)
        if concurrency is not None and await d._limits.held(f"conc:{candidate.model.name}") >= concurrency:
            return "limited: max_concurrency", 1.0, None
        account, wait = await d._free_account(candidate, self._tried_accounts)
        if account is None:
            return ("cooling down" if wait != float("inf") else "no account left"), wait, None
        return "", 0.0, account

    async def _take(self, candidate: Candidate, account: Account) -> Slot | None:
        """Count the attempt against the candidate's limits; None (and set aside) if it lost a race."""
        d = self._d
        leases: list[tuple[str, str]] = []
        concurrency = d._concurrency(candidate)
        if concurrency is not None:
            lease = await d._limits.acquire(
                f"conc:{candidate.model.name}", limit=concurrency, lease=d._settings.reservation_ttl
            )
            if lease is None:
                self._set_aside(candidate, "limited: max_concurrency", 1.0)
                return None
            leases.append((f"conc:{candidate.model.name}", lease))
        wait, label = await d._limit_wait(candidate, self._tokens, count=True)
        if wait:
            for key, lease_id in leases:
                await d._limits.release(key, lease_id)
            self._set_aside(candidate, f"limited: {label}", wait)
            return None
        call = UpstreamCall(upstream=candidate.upstream, account=account, model=candidate.model)
        client = d._registry.client_for(candidate.upstream)
        return Slot(candidate=candidate, call=call, client=client, leases=leases, tokens_counted=self._tokens)

    def _set_aside(self, candidate: Candidate, reason: str, wait: float) -> None:
        self._remaining.remove(candidate)
        if wait != float("inf"):  # it will serve again later: a limit, not a failure
            self._limited = True
            self._soonest = min(self._soonest, wait)
        self.log.append(Attempt(model=candidate.model.name, account="", outcome="skipped", reason=reason))

    async def failed(self, slot: Slot, error: UpstreamError) -> None:
        """The attempt failed before the first byte: rest what failed and free the slot."""
        await self._end(slot)
        await self._d._rest(slot.call, error)
        if not isinstance(error, UpstreamRateLimitedError):
            # A rate-limited pair is kept out by its cooldown only, so a queued request may use it again.
            self._tried_accounts.add((slot.call.upstream.name, slot.call.account.index))
        self._last_error = error
        if isinstance(error, UpstreamRateLimitedError):
            self._limited = True
            self._soonest = min(self._soonest, error.retry_after or self._d._settings.rate_limit_cooldown)
        self.log.append(
            Attempt(model=slot.call.model.name, account=slot.call.label, outcome="failed", reason=type(error).__name__)
        )

    async def finished(self, slot: Slot, usage: Usage | None, *, outcome: str = "served") -> None:
        """The attempt reached the client (successfully or not): free the slot, count real tokens."""
        await self._end(slot)
        self._d._healthy(slot.call)
        tpm = slot.candidate.model.limits.tpm
        if tpm is not None and usage is not None and usage.total_tokens > slot.tokens_counted:
            # Count the excess over the estimate unconditionally: the tokens were spent.
            await self._d._limits.hit(
                f"tpm:{slot.candidate.model.name}",
                limit=2**62,
                window=MINUTE,
                cost=usage.total_tokens - slot.tokens_counted,
            )
        self.log.append(Attempt(model=slot.call.model.name, account=slot.call.label, outcome=outcome))

    async def _end(self, slot: Slot) -> None:
        leases, slot.leases = slot.leases, []
        for key, lease_id in leases:
            await self._d._limits.release(key, lease_id)

    def _exhausted(self) -> Exception:
        if self._limited or isinstance(self._last_error, UpstreamRateLimitedError):
            wait = self._soonest if self._soonest != float("inf") else self._d._settings.rate_limit_cooldown
            return NoCapacityError(
                "Every upstream model for this request is at its limit or cooling down; retry later.",
                retry_after=max(wait, 0.001),
            )
        if self._last_error is not None:
            return UpstreamUnavailableError(
                f"No upstream could serve the request: {self._last_error.message}",
                upstream=self._last_error.upstream,
            )
        return UpstreamUnavailableError("No upstream is available for this request.")
