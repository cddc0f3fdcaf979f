"""CompleteChat: one non-streamed answer, from a principal and a canonical request."""

from __future__ import annotations

from apipod.application.authenticate_key import Principal
from apipod.application.chat_pipeline import AfterAnswer, ChatPipeline
from apipod.application.dispatch import Slot
from apipod.application.signature_memory import SignatureMemory
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.usage import UsageStatus


class CompleteChat:
    """Rules:
    - route, admit and reserve before calling any upstream; fail over on upstream errors that are not the
      caller's fault (``ChatPipeline``);
    - settle the real usage and record one usage row (after the caller's answer, with ``after_answer``);
    - the answer carries the model name the client asked for.
    """

    def __init__(self, pipeline: ChatPipeline, signatures: SignatureMemory) -> None:
        self._pipeline = pipeline
        self._signatures = signatures

    async def execute(
        self, principal: Principal, request: ChatRequest, request_id: str, *, after_answer: AfterAnswer | None = None
    ) -> ChatResult:
        async def call(slot: Slot) -> ChatResult:
            origin = slot.call.upstream.kind.value
            result = await slot.client.complete(slot.call, self._signatures.restore(request, origin))
            self._signatures.remember_parts(result.parts, origin)
            return result

        turn, result = await self._pipeline.start(principal, request, request_id, call)
        await self._pipeline.finish(turn, status=UsageStatus.SUCCESS, usage=result.usage, after_answer=after_answer)
        origin = turn.slot.call.upstream.kind.value if turn.slot is not None else ""
        return result.shown_as(request.model, origin)
