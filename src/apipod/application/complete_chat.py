"""CompleteChat: one non-streamed answer, from a principal and a canonical request."""

from __future__ import annotations

import attrs

from apipod.application.authenticate_key import Principal
from apipod.application.chat_turn import ChatTurns
from apipod.application.dispatch import Slot
from apipod.application.signature_memory import SignatureMemory
from apipod.domain.chat import ChatRequest, ChatResult


class CompleteChat:
    """Rules:
    - route, admit and reserve before calling any upstream;
    - fail over to the next candidate on upstream errors that are not the caller's fault;
    - settle the real usage (or release when nothing was produced) and record one usage row;
    - the answer carries the model name the client asked for.
    """

    def __init__(self, turns: ChatTurns, signatures: SignatureMemory) -> None:
        self._turns = turns
        self._signatures = signatures

    async def execute(self, principal: Principal, request: ChatRequest) -> ChatResult:
        turn = await self._turns.open(principal, request)

        async def call(slot: Slot) -> ChatResult:
            origin = slot.call.upstream.kind.value
            result = await slot.client.complete(slot.call, self._signatures.restore(request, origin))
            self._signatures.remember_parts(result.parts, origin)
            return result

        result = await self._turns.attempt(turn, call)
        await self._turns.close(turn, status="success", usage=result.usage)
        return attrs.evolve(result, model=request.model)
