"""The mock upstream: a deterministic local model (docs/behaviour.md §7: "mock is a real provider type").

It serves the quick start, demos and load tests without any account or network, and exercises the whole
pipeline (routing, quota, usage, both dialects, streaming, tool calls) with answers a test can predict.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator

import attrs

from apipod.application.ports import UpstreamCall, UpstreamClient
from apipod.application.reserve_quota import prompt_chars
from apipod.domain.catalog import Upstream, UpstreamKind
from apipod.domain.chat import (
    ChatRequest,
    ChatResult,
    FinishReason,
    Part,
    Role,
    TextPart,
    ToolChoiceKind,
    ToolResultPart,
    ToolUsePart,
    Usage,
)
from apipod.domain.quota import CHARS_PER_TOKEN
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)

MODEL = "mock-echo"
_PIECE = re.compile(r"\S+\s*")
_CALL_PREFIX = "call "


@attrs.frozen
class _Answer:
    id: str
    pieces: tuple[str, ...]  # the text, word by word; empty for a tool call
    tool: ToolUsePart | None
    finish: FinishReason
    usage: Usage


class MockUpstream(UpstreamClient):
    """Answers every request locally. The rules, all deterministic:

    - It echoes the last turn: ``"Echo: <text>"`` where ``<text>`` is the text of the last message when
      that is a user message or a tool result (``"Echo:"`` when it holds no text).
    - Streaming sends the answer word by word: each piece is a word and the whitespace after it, so the
      pieces join to the exact answer. ``delay_ms`` in the upstream's options waits that long between pieces.
    - Usage: input tokens = max(1, prompt characters // 4), with the characters counted as the quota
      estimate counts them; output tokens = the number of pieces emitted (1 for a tool call).
    - ``max_output_tokens`` keeps that many pieces and finishes ``MAX_TOKENS``; otherwise ``END_TURN``.
    - Tools: when the request offers tools (``tool_choice`` not ``none``) and the last message is a user
      message whose text starts with ``"call "``, the answer is a call of the first tool with arguments
      ``{}``, finishing ``TOOL_USE``. Its result echoes next turn, so a demo tool loop ends.
    - Ids are a hash of the echoed text: the same request always gets the same answer.
    """

    kind = UpstreamKind.MOCK

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        answer = _answer(request)
        parts: tuple[Part, ...] = (answer.tool,) if answer.tool else (TextPart("".join(answer.pieces)),)
        return ChatResult(
            id=answer.id,
            model=call.model.upstream_model or MODEL,
            parts=parts,
            finish_reason=answer.finish,
            usage=answer.usage,
        )

    async def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        answer = _answer(request)
        delay = _delay_seconds(call.upstream)
        yield MessageStarted(
            id=answer.id, model=call.model.upstream_model or MODEL, usage=Usage(input_tokens=answer.usage.input_tokens)
        )
        if answer.tool is not None:
            yield ToolCallStarted(key=0, id=answer.tool.id, name=answer.tool.name)
            yield ToolCallDelta(key=0, fragment=answer.tool.arguments)
        for n, piece in enumerate(answer.pieces):
            if n and delay:
                await asyncio.sleep(delay)
            yield TextDelta(piece)
        yield UsageReported(answer.usage)
        yield Finished(answer.finish)

    async def list_models(self, upstream: Upstream) -> list[str]:
        return [MODEL]


def _answer(request: ChatRequest) -> _Answer:
    last = request.messages[-1] if request.messages else None
    text = _last_text(request)
    digest = hashlib.blake2s(text.encode(), digest_size=12).hexdigest()
    usage_in = max(1, prompt_chars(request) // CHARS_PER_TOKEN)
    wants_tool = (
        request.tools
        and (request.tool_choice is None or request.tool_choice.kind is not ToolChoiceKind.NONE)
        and last is not None
        and last.role is Role.USER
        and text.startswith(_CALL_PREFIX)
    )
    if wants_tool:
        tool = ToolUsePart(id=f"call_{digest}", name=request.tools[0].name, arguments="{}")
        return _Answer(f"mock-{digest}", (), tool, FinishReason.TOOL_USE, Usage(usage_in, 1))
    pieces = tuple(_PIECE.findall(f"Echo: {text}".rstrip()))
    finish = FinishReason.END_TURN
    limit = request.max_output_tokens
    if limit is not None and len(pieces) > limit:
        pieces, finish = pieces[: max(limit, 0)], FinishReason.MAX_TOKENS
    return _Answer(f"mock-{digest}", pieces, None, finish, Usage(usage_in, len(pieces)))


def _last_text(request: ChatRequest) -> str:
    """The text of the last message, when it is a user message or a tool result."""
    if not request.messages:
        return ""
    last = request.messages[-1]
    if last.role is Role.USER:
        return last.text()
    if last.role is Role.TOOL:
        return "".join(p.text() for p in last.parts if isinstance(p, ToolResultPart))
    return ""


def _delay_seconds(upstream: Upstream) -> float:
    value = upstream.options.get("delay_ms", 0)
    try:
        delay = float(value) / 1000
    except (TypeError, ValueError):
        return 0.0
    return delay if delay > 0 else 0.0
