"""Gemini ``GenerateContentResponse`` -> canonical ChatResult
(docs/protocols/gemini.md §3, docs/protocols/translation.md §5.3, §6, §7).

Gemini rarely returns call ids, so each call gets a fresh unique one (never derived from the name: parallel
calls of one function would collide). Tool use is read from the parts, not the finish reason: Gemini says
``STOP`` for a function call. A signature on a plain text part has no slot in the canonical text, so it
travels as a text-less ThinkingPart right after that text; the encoder puts it back on the same text.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from apipod.dialects._counts import token_count
from apipod.domain.chat import ChatResult, FinishReason, ImagePart, Part, TextPart, ThinkingPart, ToolUsePart, Usage

IdFactory = Callable[[], str]

_ALPHABET = string.ascii_letters + string.digits
_FILTERED = FinishReason.CONTENT_FILTER
_FINISH: Mapping[str, FinishReason] = {
    "STOP": FinishReason.END_TURN,
    "MAX_TOKENS": FinishReason.MAX_TOKENS,
    **dict.fromkeys(
        (
            "SAFETY",
            "RECITATION",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
            "LANGUAGE",
        ),
        _FILTERED,
    ),
}


def new_call_id() -> str:
    """``call_`` + 24 random base62 characters
    (docs/protocols/translation.md §4.3; the modulo bias is irrelevant for ids)."""
    return "call_" + "".join([_ALPHABET[b % 62] for b in secrets.token_bytes(24)])


def finish_reason(value: str | None, *, tool_calls: bool) -> FinishReason:
    """docs/protocols/translation.md §6.1; a tool call overrides anything but a length or filter stop."""
    reason = _FINISH.get(value or "", FinishReason.END_TURN)
    if tool_calls and reason is FinishReason.END_TURN:
        return FinishReason.TOOL_USE
    return reason


def usage_from(meta: Mapping[str, Any]) -> Usage:
    """``usageMetadata`` -> Usage: the prompt includes cached content; output includes thoughts."""

    def count(key: str) -> int:
        return token_count(meta.get(key))

    thoughts = count("thoughtsTokenCount")
    return Usage(
        input_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
        output_tokens=count("candidatesTokenCount") + thoughts,
        cached_input_tokens=count("cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )


def text_of(value: object) -> str:
    """A wire field that should be a string; anything else counts as absent (the upstream answered 200)."""
    return value if isinstance(value, str) else ""


def first_candidate(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], Mapping):
        return candidates[0]
    return None


def candidate_parts(candidate: Mapping[str, Any] | None) -> list[Any]:
    if candidate is None:
        return []
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return parts if isinstance(parts, list) else []


def tool_use(call: object, signature: Any, ids: IdFactory, names: Mapping[str, str]) -> ToolUsePart:
    if not isinstance(call, Mapping):
        call = {}
    name = text_of(call.get("name"))
    args = call.get("args")
    return ToolUsePart(
        id=text_of(call.get("id")) or ids(),
        name=names.get(name, name),
        arguments=orjson.dumps(args if args is not None else {}).decode(),
        signature=signature if isinstance(signature, str) and signature else None,
    )


def decode_response(
    body: Mapping[str, Any], *, ids: IdFactory = new_call_id, names: Mapping[str, str] | None = None
) -> ChatResult:
    """``names`` maps rewritten tool names back to the client's (``tool_name_map``)."""
    names = names or {}
    candidate = first_candidate(body)
    parts: list[Part] = []
    text: list[str] = []
    thinking: list[str] = []
    thinking_sig = ""

    def flush() -> None:
        nonlocal thinking_sig
        if thinking:
            parts.append(ThinkingPart("".join(thinking), thinking_sig))
            thinking.clear()
            thinking_sig = ""
        if text:
            parts.append(TextPart("".join(text)))
            text.clear()

    for raw in candidate_parts(candidate):
        if not isinstance(raw, Mapping):
            continue
        signature = raw.get("thoughtSignature")
        if raw.get("thought"):
            if text:
                flush()
            thinking.append(text_of(raw.get("text")))
            if isinstance(signature, str) and signature:
                thinking_sig = signature
        elif "functionCall" in raw:
            flush()
            parts.append(tool_use(raw["functionCall"], signature, ids, names))
        elif "text" in raw:
            if thinking:
                flush()
            if text_of(raw["text"]):
                text.append(raw["text"])
            if isinstance(signature, str) and signature:
                flush()
                parts.append(ThinkingPart("", signature))
        elif isinstance(raw.get("inlineData"), Mapping):
            flush()
            data = raw["inlineData"]
            image = data.get("data")
            parts.append(ImagePart(media_type=text_of(data.get("mimeType")), data=text_of(image) or None))
    flush()
    calls = any(isinstance(p, ToolUsePart) for p in parts)
    if candidate is None:
        blocked = isinstance(body.get("promptFeedback"), Mapping) and body["promptFeedback"].get("blockReason")
        reason = _FILTERED if blocked else FinishReason.END_TURN
    else:
        reason = finish_reason(text_of(candidate.get("finishReason")), tool_calls=calls)
    meta = body.get("usageMetadata")
    return ChatResult(
        id=text_of(body.get("responseId")),
        model=text_of(body.get("modelVersion")),
        parts=tuple(parts),
        finish_reason=reason,
        usage=usage_from(meta) if isinstance(meta, Mapping) else Usage(),
    )
