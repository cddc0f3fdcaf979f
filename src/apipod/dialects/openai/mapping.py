"""Small shared conversions: finish reasons, usage, reasoning effort, data URLs, thought signatures.

References: docs/protocols/translation.md §5.2 (effort <-> budget), §6.1 (finish reasons), §7 (usage).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects._counts import token_count
from apipod.domain.chat import FinishReason, ThinkingConfig, ThinkingMode, Usage

# --- finish reasons -------------------------------------------------------------------------------

_FROM_WIRE: dict[str, FinishReason] = {
    "stop": FinishReason.END_TURN,
    "length": FinishReason.MAX_TOKENS,
    "tool_calls": FinishReason.TOOL_USE,
    "function_call": FinishReason.TOOL_USE,
    "content_filter": FinishReason.CONTENT_FILTER,
}

_TO_WIRE: dict[FinishReason, str] = {
    FinishReason.END_TURN: "stop",
    FinishReason.STOP_SEQUENCE: "stop",
    FinishReason.PAUSE_TURN: "stop",
    FinishReason.MAX_TOKENS: "length",
    FinishReason.TOOL_USE: "tool_calls",
    FinishReason.CONTENT_FILTER: "content_filter",
}

# A tool call wins over a plain stop, never over a cut-off or a filter (docs/protocols/translation.md §6.1, override 1).
_KEEP_OVER_TOOL_USE = frozenset({FinishReason.MAX_TOKENS, FinishReason.CONTENT_FILTER})


def finish_from_wire(value: object, *, saw_tool_call: bool) -> FinishReason:
    """An upstream ``finish_reason``; unknown or missing values mean a normal stop."""
    reason = _FROM_WIRE.get(value, FinishReason.END_TURN) if isinstance(value, str) else FinishReason.END_TURN
    if saw_tool_call and reason not in _KEEP_OVER_TOOL_USE:
        return FinishReason.TOOL_USE
    return reason


def finish_to_wire(reason: FinishReason, *, saw_tool_call: bool) -> str:
    if saw_tool_call and reason not in _KEEP_OVER_TOOL_USE:
        return "tool_calls"
    return _TO_WIRE.get(reason, "stop")


# --- usage ----------------------------------------------------------------------------------------


def _count(obj: object, key: str) -> int:
    # a JSON object is a dict once parsed; ``isinstance`` against ``Mapping`` costs an ABC check (PERF: per answer)
    return token_count(obj.get(key)) if isinstance(obj, dict) else 0


def usage_from_wire(usage: Mapping[str, Any]) -> Usage:
    """OpenAI's counts already include cached input and reasoning output, as canonical ``Usage`` does."""
    prompt_details = usage.get("prompt_tokens_details")
    return Usage(
        input_tokens=_count(usage, "prompt_tokens"),
        output_tokens=_count(usage, "completion_tokens"),
        cached_input_tokens=_count(prompt_details, "cached_tokens"),
        cache_creation_input_tokens=_count(prompt_details, "cache_write_tokens"),
        reasoning_tokens=_count(usage.get("completion_tokens_details"), "reasoning_tokens"),
    )


def usage_to_wire(usage: Usage) -> dict[str, Any]:
    prompt_details: dict[str, int] = {"cached_tokens": usage.cached_input_tokens}
    if usage.cache_creation_input_tokens:
        prompt_details["cache_write_tokens"] = usage.cache_creation_input_tokens
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


# --- reasoning effort <-> thinking budget (docs/protocols/translation.md §5.2) ----------------------------------

# NOTE: the reference defines budgets for low/medium/high only; "xhigh" and "max" get the largest one.
EFFORT_BUDGETS: dict[str, int] = {"low": 2048, "medium": 8192, "high": 24576, "xhigh": 24576, "max": 24576}
EFFORT_DISABLED = frozenset({"none", "minimal"})
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def thinking_from_effort(effort: str) -> ThinkingConfig | None:
    """``None`` for an effort this dialect does not know (the caller reports it)."""
    if effort in EFFORT_DISABLED:
        return ThinkingConfig(ThinkingMode.DISABLED, effort=effort)
    budget = EFFORT_BUDGETS.get(effort)
    if budget is None:
        return None
    return ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=budget, effort=effort)


def effort_from_thinking(thinking: ThinkingConfig | None) -> str | None:
    """Only an enabled budget maps (other dialects' adaptive or disabled thinking has no OpenAI effort)."""
    if thinking is None or thinking.mode is not ThinkingMode.ENABLED or thinking.budget_tokens is None:
        return None
    if thinking.budget_tokens < 4096:
        return "low"
    if thinking.budget_tokens < 16384:
        return "medium"
    return "high"


# --- images ---------------------------------------------------------------------------------------


def parse_data_url(url: str) -> tuple[str, str] | None:
    """``data:<mime>;base64,<payload>`` -> ``(mime, payload)``; ``None`` if it is not that shape."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        return None
    media_type = header[5:-7]
    if not media_type or not payload:
        return None
    return media_type, payload


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


# --- Gemini thought signatures on tool calls ------------------------------------------------------


def signature_of(tool_call: Mapping[str, Any]) -> str | None:
    """``extra_content.google.thought_signature`` (Google's OpenAI-compatibility convention)."""
    extra = tool_call.get("extra_content")
    google = extra.get("google") if isinstance(extra, Mapping) else None
    signature = google.get("thought_signature") if isinstance(google, Mapping) else None
    return signature if isinstance(signature, str) and signature else None


def signature_field(signature: str) -> dict[str, Any]:
    return {"google": {"thought_signature": signature}}
