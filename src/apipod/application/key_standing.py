"""KeyStanding: what a key holder may ask of the gateway, and how much of each budget is left."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

from apipod.application.authenticate_key import Principal
from apipod.application.ports import Clock, QuotaLedger


@attrs.frozen(kw_only=True)
class BudgetStanding:
    """One limit of one budget window: ``unit`` is "tokens" or "requests" (whole numbers) or "cost" (money in
    the catalog's currency, exact decimals); ``used`` counts spent plus held."""

    window: str
    unit: str
    limit: int | Decimal
    used: int | Decimal
    resets_at: datetime

    @property
    def remaining(self) -> int | Decimal:
        left = self.limit - self.used
        return left if left > 0 else left - left


class KeyStanding:
    """Rules: every budget of the key's plan, per unit it limits, in the window holding now (the ledger's
    current use, holds of requests in flight included, so ``remaining`` is what the next request can have)."""

    def __init__(self, ledger: QuotaLedger, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    async def execute(self, principal: Principal) -> tuple[BudgetStanding, ...]:
        budgets = principal.plan.budgets
        if not budgets:
            return ()
        now = self._clock.now()
        uses = await self._ledger.usage(key_id=principal.key.id, budgets=budgets, now=now)
        standings: list[BudgetStanding] = []
        for budget, use in zip(budgets, uses, strict=True):
            _, end = budget.window.bounds(now)
            limits: tuple[tuple[str, int | Decimal | None, int | Decimal], ...] = (
                ("tokens", budget.tokens, use.tokens),
                ("requests", budget.requests, use.requests),
                ("cost", budget.cost, use.cost),
            )
            for unit, limit, used in limits:
                if limit is not None:
                    standings.append(
                        BudgetStanding(window=budget.window.name, unit=unit, limit=limit, used=used, resets_at=end)
                    )
        return tuple(standings)
