"""Canonical ChatResult -> a ``GenerateContentResponse`` for a Gemini client
(docs/protocols/gemini.md §3, docs/protocols/gemini-cli.md §5).

The inverse of ``response.decode_response``: thinking as ``thought: true`` text parts, a text-less signed
ThinkingPart back on the text part before it, calls as ``functionCall`` parts with their id and signature. Gemini
has no tool-use finish reason (a call ends with ``STOP``). A turn with nothing in it still gets one empty text
part: the Gemini CLI then retries with a nudge, its designed recovery, where a made-up text would end the turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apipod.dialects.gemini.arguments import parse_arguments
from apipod.domain.chat import (
    ChatResult,
    FinishReason,
    ImagePart,
    Part,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)

Json = dict[str, Any]

_FINISH = {
    FinishReason.MAX_TOKENS: "MAX_TOKENS",
    FinishReason.CONTENT_FILTER: "SAFETY",
}
EMPTY_TEXT: Json = {"text": ""}


def finish_to_wire(reason: FinishReason) -> str:
    """``STOP`` for an ended turn, a call, a stop sequence or a pause; ``MAX_TOKENS``; ``SAFETY`` for a filter."""
    return _FINISH.get(reason, "STOP")


def usage_metadata(usage: Usage) -> Json:
    """``candidatesTokenCount`` excludes thoughts (canonical output includes them); zero thought and cache counts
    are left out, as Google does."""
    meta: Json = {
        "promptTokenCount": usage.input_tokens,
        "candidatesTokenCount": max(usage.output_tokens - usage.reasoning_tokens, 0),
        "totalTokenCount": usage.input_tokens + usage.output_tokens,
    }
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    if usage.cached_input_tokens:
        meta["cachedContentTokenCount"] = usage.cached_input_tokens
    return meta


def call_part(call_id: str, name: str, arguments: str, signature: str | None) -> Json:
    """A ``functionCall`` part; arguments that are not a JSON object are repaired or become ``{}``."""
    part: Json = {"functionCall": {"id": call_id, "name": name, "args": parse_arguments(arguments)}}
    if signature:
        part["thoughtSignature"] = signature
    return part


def content_parts(parts: Sequence[Part]) -> list[Json]:
    out: list[Json] = []
    for part in parts:
        if isinstance(part, TextPart):
            if part.text:
                out.append({"text": part.text})
        elif isinstance(part, ThinkingPart):
            if part.text:
                thought: Json = {"text": part.text, "thought": True}
                if part.signature:
                    thought["thoughtSignature"] = part.signature
                out.append(thought)
            elif part.signature:
                last = out[-1] if out else None
                if last is not None and "text" in last and "thoughtSignature" not in last:
                    last["thoughtSignature"] = part.signature
                else:
                    out.append({"text": "", "thoughtSignature": part.signature})
        elif isinstance(part, ToolUsePart):
            out.append(call_part(part.id, part.name, part.arguments, part.signature))
        elif isinstance(part, ImagePart):
            image = _image(part)
            if image is not None:
                out.append(image)
        # RedactedThinkingPart: Gemini has no slot for it; ToolResultPart never appears in an answer.
    return out or [dict(EMPTY_TEXT)]


def encode_client_response(result: ChatResult, *, model: str, response_id: str) -> Json:
    return {
        "candidates": [
            {
                "content": {"parts": content_parts(result.parts), "role": "model"},
                "finishReason": finish_to_wire(result.finish_reason),
                "index": 0,
            }
        ],
        "usageMetadata": usage_metadata(result.usage),
        "modelVersion": model,
        "responseId": response_id,
    }


def _image(part: ImagePart) -> Json | None:
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data}}
    if part.url:
        return {"fileData": {"mimeType": part.media_type or "image/png", "fileUri": part.url}}
    return None
