"""ReserveQuota: hold an estimate against the key's budgets before the upstream call; settle or release
after it."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from apipod.application.ports import Clock, QuotaLedger
from apipod.application.settings import GovernanceSettings
from apipod.domain.catalog import ModelPrices, Plan
from apipod.domain.chat import ChatRequest, ImagePart, TextPart, ThinkingPart, ToolResultPart, ToolUsePart, Usage
from apipod.domain.pricing import estimate_cost
from apipod.domain.quota import Reservation, estimate_parts

IMAGE_CHAR_ESTIMATE = 6000  # about 1.5k tokens, a typical image's cost
_NO_COST = Decimal(0)


def prompt_chars(request: ChatRequest) -> int:
    """A cheap size of the prompt in characters, for the reservation estimate."""
    total = sum(len(p.text) for p in request.system)
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, TextPart):
                total += len(part.text)
            elif isinstance(part, ToolUsePart):
                total += len(part.arguments) + len(part.name)
            elif isinstance(part, ToolResultPart):
                total += sum(len(c.text) if isinstance(c, TextPart) else IMAGE_CHAR_ESTIMATE for c in part.content)
            elif isinstance(part, ThinkingPart):
                total += len(part.text)
            elif isinstance(part, ImagePart):
                total += IMAGE_CHAR_ESTIMATE
    for tool in request.tools:
        total += len(tool.name) + len(tool.description) + 200
    return total


class ReserveQuota:
    """Rules (docs/behaviour.md §2):
    - a plan without budgets reserves nothing (no store round trip);
    - the hold is input estimate plus max output, capped; it expires after ``reservation_ttl``;
    - a money budget holds the input estimate and the request's max output (uncapped; the cap when not
      given) priced at the most expensive input and output prices among the request's candidate models
      (the routed one is not chosen yet), from the catalog snapshot in memory;
    - settle applies the real usage (input plus output tokens, and the cost at the routed model's prices)
      and gives back the rest; a request that failed before producing output is released and costs nothing.
    """

    def __init__(self, ledger: QuotaLedger, clock: Clock, settings: GovernanceSettings) -> None:
        self._ledger = ledger
        self._clock = clock
        self._ttl = settings.reservation_ttl
        self._cap = settings.estimate_output_cap

    async def execute(
        self,
        *,
        key_id: str,
        plan: Plan,
        request: ChatRequest,
        prices: Iterable[ModelPrices] = (),
        chars: int | None = None,
    ) -> Reservation | None:
        """``prices``: of the models the request may be routed to; ``chars``: ``prompt_chars(request)``, when the
        caller has counted it already."""
        if not plan.budgets:
            return None
        input_tokens, output_tokens = estimate_parts(
            prompt_chars(request) if chars is None else chars, request.max_output_tokens, output_cap=self._cap
        )
        cost = (
            # the request's own max output, uncapped: a money hold must cover what the answer may cost
            estimate_cost(input_tokens, request.max_output_tokens or output_tokens, prices)
            if any(b.cost is not None for b in plan.budgets)
            else _NO_COST
        )
        return await self._ledger.reserve(
            key_id=key_id,
            budgets=plan.budgets,
            tokens=input_tokens + output_tokens,
            now=self._clock.now(),
            ttl=self._ttl,
            cost=cost,
        )

    async def settle(self, reservation: Reservation | None, usage: Usage, cost: Decimal = Decimal(0)) -> None:
        if reservation is not None:
            await self._ledger.settle(reservation, tokens=usage.total_tokens, now=self._clock.now(), cost=cost)

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            await self._ledger.release(reservation, now=self._clock.now())
