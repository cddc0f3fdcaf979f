"""Thought signatures remembered by tool-call id, so a tool conversation survives clients that drop them.

Gemini binds a ``thoughtSignature`` to each function call and rejects the next turn without it. OpenAI
clients carry it back in ``extra_content`` only if they keep unknown fields, and Anthropic's ``tool_use``
block has no place for it at all; the server-side memory is the reliable channel (docs/protocols/translation.md §5.4).
Signatures are bound to the upstream kind that issued them and are restored only toward that kind.
"""

from __future__ import annotations

from collections import OrderedDict

import attrs

from apipod.application.ports import Clock
from apipod.domain.chat import (
    ChatRequest,
    Message,
    Part,
    RedactedThinkingPart,
    Role,
    ThinkingPart,
    ToolUsePart,
)


class SignatureMemory:
    def __init__(self, clock: Clock, *, ttl: float = 7200.0, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._ttl = ttl
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[float, str, str]] = OrderedDict()

    def remember(self, call_id: str, signature: str | None, origin: str) -> None:
        if not signature or not call_id:
            return
        self._entries[call_id] = (self._clock.monotonic() + self._ttl, signature, origin)
        self._entries.move_to_end(call_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def remember_parts(self, parts: tuple[Part, ...], origin: str) -> None:
        for part in parts:
            if isinstance(part, ToolUsePart):
                self.remember(part.id, part.signature, origin)

    def restore(self, request: ChatRequest, origin: str) -> ChatRequest:
        """The request with remembered signatures put back on the assistant's unsigned tool calls that
        ``origin`` issued; the same object when there is nothing to put back (the common case)."""
        if request.signed_origins and not request.signed_origins <= {origin}:
            request = _without_foreign_thinking(request, origin)
        if not self._entries:
            return request
        now = self._clock.monotonic()
        changed = False
        messages = []
        for message in request.messages:
            if message.role is Role.ASSISTANT and any(
                isinstance(p, ToolUsePart) and not p.signature and p.id in self._entries for p in message.parts
            ):
                parts = tuple(self._signed(p, origin, now) for p in message.parts)
                if parts != message.parts:
                    message = Message(message.role, parts)
                    changed = True
            messages.append(message)
        return attrs.evolve(request, messages=tuple(messages)) if changed else request

    def _signed(self, part: Part, origin: str, now: float) -> Part:
        if not isinstance(part, ToolUsePart) or part.signature:
            return part
        entry = self._entries.get(part.id)
        if entry is None or entry[0] < now or entry[2] != origin:
            return part
        return attrs.evolve(part, signature=entry[1])


def _without_foreign_thinking(request: ChatRequest, origin: str) -> ChatRequest:
    """The request without the thinking parts another upstream kind signed: a signature is only good where it
    was made (an OpenAI ``encrypted_content`` means nothing to Anthropic, which rejects it)."""
    messages = []
    for message in request.messages:
        if message.role is Role.ASSISTANT:
            parts = tuple(
                p
                for p in message.parts
                if not (isinstance(p, ThinkingPart | RedactedThinkingPart) and p.origin and p.origin != origin)
            )
            if not parts:
                continue  # a turn that held only foreign reasoning
            if parts != message.parts:
                message = Message(message.role, parts)
        messages.append(message)
    return attrs.evolve(request, messages=tuple(messages), signed_origins=request.signed_origins & {origin})
