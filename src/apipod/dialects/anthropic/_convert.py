"""Conversions shared by the request, response and stream codecs: usage (docs/protocols/translation.md §7), stop reasons
(§6), tool arguments (§4.1) and the assistant-side content blocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects._counts import token_count
from apipod.domain.chat import (
    FinishReason,
    Part,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolUsePart,
    Usage,
)

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": FinishReason.END_TURN,
    "max_tokens": FinishReason.MAX_TOKENS,
    "stop_sequence": FinishReason.STOP_SEQUENCE,
    "tool_use": FinishReason.TOOL_USE,
    "pause_turn": FinishReason.PAUSE_TURN,
    "refusal": FinishReason.CONTENT_FILTER,
    "model_context_window_exceeded": FinishReason.MAX_TOKENS,
}

_STOP_REASON_NAMES: dict[FinishReason, str] = {
    FinishReason.END_TURN: "end_turn",
    FinishReason.MAX_TOKENS: "max_tokens",
    FinishReason.STOP_SEQUENCE: "stop_sequence",
    FinishReason.TOOL_USE: "tool_use",
    FinishReason.CONTENT_FILTER: "refusal",
    FinishReason.PAUSE_TURN: "pause_turn",
}

# Reasons that a tool call in the answer does not override (§6.1 override 1).
_KEPT_OVER_TOOL_USE = frozenset({FinishReason.MAX_TOKENS, FinishReason.CONTENT_FILTER, FinishReason.PAUSE_TURN})


def finish_reason(stop_reason: object, *, saw_tool_use: bool) -> FinishReason:
    """An Anthropic ``stop_reason`` (null or unknown means a natural end) as a canonical reason."""
    reason = _STOP_REASONS.get(stop_reason) if isinstance(stop_reason, str) else None
    reason = reason or FinishReason.END_TURN
    if saw_tool_use and reason not in _KEPT_OVER_TOOL_USE:
        return FinishReason.TOOL_USE
    return reason


def stop_reason_name(reason: FinishReason, *, saw_tool_use: bool = False) -> str:
    if saw_tool_use and reason not in _KEPT_OVER_TOOL_USE:
        return "tool_use"
    return _STOP_REASON_NAMES.get(reason, "end_turn")


def _count(usage: Mapping[str, Any], key: str) -> int:
    return token_count(usage.get(key))


def usage_from_wire(usage: object) -> Usage:
    """Anthropic usage to canonical: the canonical input counts the whole prompt, cache included."""
    if not isinstance(usage, Mapping):
        return Usage()
    cache_read = _count(usage, "cache_read_input_tokens")
    cache_creation = _count(usage, "cache_creation_input_tokens")
    details = usage.get("output_tokens_details")
    reasoning = _count(details, "thinking_tokens") if isinstance(details, Mapping) else 0
    return Usage(
        input_tokens=_count(usage, "input_tokens") + cache_read + cache_creation,
        output_tokens=_count(usage, "output_tokens"),
        cached_input_tokens=cache_read,
        cache_creation_input_tokens=cache_creation,
        reasoning_tokens=reasoning,
    )


def usage_to_wire(usage: Usage) -> dict[str, int]:
    """Canonical usage to Anthropic's, whose ``input_tokens`` is the uncached remainder (clamped at 0)."""
    uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_creation_input_tokens
    return {
        "input_tokens": max(uncached, 0),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cached_input_tokens,
    }


def input_to_arguments(value: object) -> str:
    """A ``tool_use.input`` as canonical JSON text. Some clients send the input re-serialised as a string."""
    if isinstance(value, str):
        value = arguments_to_input(value)
    if value is None:
        return "{}"
    if not isinstance(value, Mapping):
        value = {"value": value}
    return orjson.dumps(value).decode()


def arguments_to_input(arguments: str) -> dict[str, Any]:
    """Canonical JSON text as a ``tool_use.input`` object: empty or invalid gives ``{}``, a non-object is
    wrapped as ``{"value": ...}`` (Anthropic accepts objects only)."""
    if not arguments or not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(value, dict):
        return value
    return {"value": value}


def assistant_block(part: Part, *, keep_unsigned_thinking: bool) -> dict[str, Any] | None:
    """One assistant-side part as a content block, or None when Anthropic cannot take it."""
    if isinstance(part, TextPart):
        if not part.text.strip():
            return None
        block: dict[str, Any] = {"type": "text", "text": part.text}
        if part.cache_control is not None:
            block["cache_control"] = part.cache_control
        return block
    if isinstance(part, ToolUsePart):
        return {"type": "tool_use", "id": part.id, "name": part.name, "input": arguments_to_input(part.arguments)}
    if isinstance(part, ThinkingPart):
        if not part.signature and not keep_unsigned_thinking:
            return None
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    if isinstance(part, RedactedThinkingPart):
        return {"type": "redacted_thinking", "data": part.data}
    return None
