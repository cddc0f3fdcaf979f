"""Non-streamed answers: canonical ``ChatResult`` to a client's Message, and an upstream's Message back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects.anthropic._convert import (
    assistant_block,
    finish_reason,
    input_to_arguments,
    stop_reason_name,
    usage_from_wire,
    usage_to_wire,
)
from apipod.domain.chat import (
    ChatResult,
    Part,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolUsePart,
)


def encode_response(result: ChatResult, *, model: str) -> dict[str, Any]:
    """The client's Message; ``model`` is the name the client asked for (Claude Code shows it)."""
    content = [b for p in result.parts if (b := assistant_block(p, keep_unsigned_thinking=True)) is not None]
    saw_tool_use = any(isinstance(p, ToolUsePart) for p in result.parts)
    return {
        "id": message_id(result.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_name(result.finish_reason, saw_tool_use=saw_tool_use),
        "stop_sequence": result.stop_sequence,
        "usage": usage_to_wire(result.usage),
    }


def message_id(result_id: str) -> str:
    """Anthropic clients expect ``msg_`` ids; another dialect's upstream id is kept inside it."""
    return result_id if result_id.startswith("msg_") else f"msg_{result_id}"


def decode_response(body: Mapping[str, Any]) -> ChatResult:
    """An upstream's Message. Lenient: unknown block types (server tools, newer features) are skipped and
    missing fields take neutral defaults, since the upstream answered 200."""
    parts: list[Part] = []
    content = body.get("content")
    for block in content if isinstance(content, list) else ():
        if isinstance(block, Mapping) and (part := _part(block)) is not None:
            parts.append(part)
    saw_tool_use = any(isinstance(p, ToolUsePart) for p in parts)
    stop_sequence = body.get("stop_sequence")
    return ChatResult(
        id=_str(body.get("id")),
        model=_str(body.get("model")),
        parts=tuple(parts),
        finish_reason=finish_reason(body.get("stop_reason"), saw_tool_use=saw_tool_use),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
        usage=usage_from_wire(body.get("usage")),
    )


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _part(block: Mapping[str, Any]) -> Part | None:
    kind = block.get("type")
    if kind == "text":
        return TextPart(_str(block.get("text")))
    if kind == "thinking":
        return ThinkingPart(_str(block.get("thinking")), _str(block.get("signature")))
    if kind == "redacted_thinking":
        return RedactedThinkingPart(_str(block.get("data")))
    if kind == "tool_use":
        return ToolUsePart(_str(block.get("id")), _str(block.get("name")), input_to_arguments(block.get("input")))
    return None
