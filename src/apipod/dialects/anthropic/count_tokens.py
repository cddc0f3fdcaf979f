"""A deterministic token estimate for ``POST /v1/messages/count_tokens`` when no upstream can count."""

from __future__ import annotations

import orjson

from apipod.domain.chat import (
    ChatRequest,
    ImagePart,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)

_CHARS_PER_TOKEN = 4
# Anthropic bills an image by its pixel area (about 1,600 tokens for a typical screenshot); the base64
# length would overstate it many times over.
_IMAGE_TOKENS = 1600


def count_tokens(request: ChatRequest) -> int:
    """About one token per four characters of system prompt, messages and tool definitions (at least 1).

    Claude Code only needs a stable, roughly right number to decide when to compact its context.
    """
    chars = sum(len(p.text) for p in request.system)
    images = 0
    for message in request.messages:
        for part in message.parts:
            if isinstance(part, TextPart | ThinkingPart):
                chars += len(part.text)
            elif isinstance(part, ToolUsePart):
                chars += len(part.name) + len(part.arguments)
            elif isinstance(part, ToolResultPart):
                chars += len(part.text())
                images += sum(1 for p in part.content if isinstance(p, ImagePart))
            elif isinstance(part, ImagePart):
                images += 1
            elif isinstance(part, RedactedThinkingPart):
                chars += len(part.data)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(orjson.dumps(tool.parameters, default=dict))
    return max(1, -(-chars // _CHARS_PER_TOKEN) + images * _IMAGE_TOKENS)
