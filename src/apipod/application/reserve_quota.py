"""ReserveQuota: hold an estimate against the key's budgets before the upstream call; settle or release
after it."""

from __future__ import annotations

from apipod.application.ports import Clock, QuotaLedger
from apipod.application.settings import GovernanceSettings
from apipod.domain.catalog import Plan
from apipod.domain.chat import ChatRequest, ImagePart, TextPart, ThinkingPart, ToolResultPart, ToolUsePart, Usage
from apipod.domain.quota import Reservation, estimate_tokens

IMAGE_CHAR_ESTIMATE = 6000  # about 1.5k tokens, a typical image's cost


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
    - settle applies the real usage (input plus output tokens) and gives back the rest; a request that
      failed before producing output is released and costs nothing.
    """

    def __init__(self, ledger: QuotaLedger, clock: Clock, settings: GovernanceSettings) -> None:
        self._ledger = ledger
        self._clock = clock
        self._ttl = settings.reservation_ttl
        self._cap = settings.estimate_output_cap

    async def execute(self, *, key_id: str, plan: Plan, request: ChatRequest) -> Reservation | None:
        if not plan.budgets:
            return None
        tokens = estimate_tokens(prompt_chars(request), request.max_output_tokens, output_cap=self._cap)
        return await self._ledger.reserve(
            key_id=key_id, budgets=plan.budgets, tokens=tokens, now=self._clock.now(), ttl=self._ttl
        )

    async def settle(self, reservation: Reservation | None, usage: Usage) -> None:
        if reservation is not None:
            await self._ledger.settle(reservation, tokens=usage.total_tokens, now=self._clock.now())

    async def release(self, reservation: Reservation | None) -> None:
        if reservation is not None:
            await self._ledger.release(reservation, now=self._clock.now())
