"""Upstream side: a canonical ``ChatRequest`` to the body sent to an Anthropic-compatible upstream.

Same-dialect requests pass through (fields apipod does not model survive). Requests from other dialects
(Responses and Gemini clients included: their ``raw`` is never read here) are built from the canonical fields
with Anthropic's constraints applied (docs/protocols/translation.md §1-§5, §9). The Messages API has no JSON
mode: a ``response_format`` becomes a closing system instruction (``json_instruction``).
"""

from __future__ import annotations

from typing import Any

import orjson

from apipod.dialects.anthropic._convert import assistant_block
from apipod.domain.chat import (
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ToolChoiceKind,
    ToolResultPart,
    ToolSpec,
)

DEFAULT_MAX_TOKENS = 8192
_MIN_BUDGET = 1024
_BUDGET_HEADROOM = 4096
_EFFORT_BUDGETS = {"low": 2048, "medium": 8192, "high": 24576, "xhigh": 24576}
_NO_THINKING_EFFORTS = frozenset({"none", "minimal"})
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_CHOICE_NAMES = {
    ToolChoiceKind.AUTO: "auto",
    ToolChoiceKind.REQUIRED: "any",
    ToolChoiceKind.TOOL: "tool",
    ToolChoiceKind.NONE: "none",
}

Turn = tuple[str, list[dict[str, Any]]]


def encode_request(request: ChatRequest, *, model: str, stream: bool) -> dict[str, Any]:
    """The upstream body for ``request``, asking for ``model`` (the upstream's name for it)."""
    if request.dialect == "anthropic" and request.raw is not None:
        body = dict(request.raw)
        body["model"] = model
        body["stream"] = stream
        return body
    return _build(request, model=model, stream=stream)


def _build(request: ChatRequest, *, model: str, stream: bool) -> dict[str, Any]:
    system = list(request.system)
    turns: list[Turn] = []
    for message in request.messages:
        if message.role is Role.SYSTEM:  # Anthropic has no system turns outside Claude Code's beta
            system.extend(p for p in message.parts if isinstance(p, TextPart))
            continue
        role, blocks = _turn(message)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, blocks))
    if request.response_format is not None and (instruction := json_instruction(request.response_format)):
        system.append(TextPart(instruction))
    thinking = request.thinking
    if thinking is not None and _thinking_on(thinking) and _tool_loop_without_thinking(turns):
        thinking = None  # Anthropic would answer 400 (docs/protocols/translation.md §5.4 point 4)
    thinking_block, max_tokens = _thinking(thinking, request.max_output_tokens or DEFAULT_MAX_TOKENS)
    thinking_on = thinking_block is not None and thinking_block["type"] != "disabled"
    if thinking_on:
        while turns and turns[-1][0] == "assistant":  # no prefill together with thinking
            turns.pop()

    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": _messages(turns)}
    system_value = _system(system)
    if system_value:
        body["system"] = system_value
    if request.tools:
        body["tools"] = [_tool(tool) for tool in request.tools]
        choice = _tool_choice(request, thinking_on=thinking_on)
        if choice is not None:
            body["tool_choice"] = choice
    if thinking_block is not None:
        body["thinking"] = thinking_block
    if request.temperature is not None and not thinking_on:
        body["temperature"] = min(max(request.temperature, 0.0), 1.0)
    if request.top_p is not None and not (thinking_on and request.top_p < 0.95):
        body["top_p"] = request.top_p
    if request.top_k is not None and not thinking_on:
        body["top_k"] = request.top_k
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user:
        body["metadata"] = {"user_id": request.user}
    body["stream"] = stream
    return body


def json_instruction(spec: ResponseFormat) -> str | None:
    """What asks a model without a JSON mode for JSON only (the schema given inline); None for plain text."""
    if spec.kind is ResponseFormatKind.TEXT:
        return None
    text = "Answer with only one JSON object: no other text before or after it, no Markdown code fence."
    if spec.kind is ResponseFormatKind.JSON_SCHEMA and spec.schema:
        text += " The object must be valid against this JSON Schema: " + orjson.dumps(spec.schema).decode()
    return text


def _turn(message: Message) -> Turn:
    if message.role is Role.ASSISTANT:
        blocks = [b for p in message.parts if (b := assistant_block(p, keep_unsigned_thinking=False)) is not None]
        return "assistant", blocks
    user_blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            user_blocks.append(_tool_result(part))
        elif isinstance(part, TextPart):
            if (text_block := _text(part)) is not None:
                user_blocks.append(text_block)
        elif isinstance(part, ImagePart) and (image := _image(part)) is not None:
            user_blocks.append(image)
    return "user", user_blocks


def _messages(turns: list[Turn]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for role, blocks in turns:
        if role == "user" and len(blocks) > 1:
            # tool_result blocks must open the user turn (docs/protocols/anthropic-messages.md §3)
            results = [b for b in blocks if b["type"] == "tool_result"]
            if results and len(results) < len(blocks):
                blocks = results + [b for b in blocks if b["type"] != "tool_result"]
        messages.append({"role": role, "content": blocks})
    return messages


def _text(part: TextPart) -> dict[str, Any] | None:
    if not part.text.strip():
        return None  # Anthropic rejects empty text blocks
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _image(part: ImagePart) -> dict[str, Any] | None:
    media_type, data = part.media_type, part.data
    if data is None and part.url and part.url.startswith("data:"):
        header, _, payload = part.url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        data = payload if encoding == "base64" and payload else None
        if data is None:
            return None
    if data is not None:
        if media_type not in _IMAGE_TYPES:
            return None
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    if part.url:
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    return None


def _tool_result(part: ToolResultPart) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.tool_use_id}
    if any(isinstance(p, ImagePart) for p in part.content):
        content = [b for p in part.content if (b := (_text(p) if isinstance(p, TextPart) else _image(p))) is not None]
        if content:
            block["content"] = content
    elif text := part.text():
        block["content"] = text
    if part.is_error:
        block["is_error"] = True
    return block


def _system(parts: list[TextPart]) -> str | list[dict[str, Any]]:
    if any(p.cache_control is not None for p in parts):
        return [b for p in parts if (b := _text(p)) is not None]
    return "\n\n".join(p.text for p in parts if p.text.strip())


def _tool(tool: ToolSpec) -> dict[str, Any]:
    schema = tool.parameters
    if schema.get("type") != "object":
        schema = {**schema, "type": "object"}
    spec: dict[str, Any] = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["input_schema"] = schema
    return spec


def _tool_choice(request: ChatRequest, *, thinking_on: bool) -> dict[str, Any] | None:
    choice = request.tool_choice
    no_parallel = request.parallel_tool_calls is False or (choice is not None and choice.disable_parallel)
    kind = choice.kind if choice is not None else ToolChoiceKind.AUTO
    if kind is ToolChoiceKind.TOOL and not (choice and choice.name):
        kind = ToolChoiceKind.REQUIRED
    if thinking_on and kind in (ToolChoiceKind.REQUIRED, ToolChoiceKind.TOOL):
        kind = ToolChoiceKind.AUTO  # with thinking Anthropic accepts only auto and none
    if choice is None and not no_parallel:
        return None
    out: dict[str, Any] = {"type": _CHOICE_NAMES[kind]}
    if kind is ToolChoiceKind.TOOL and choice is not None:
        out["name"] = choice.name
    if no_parallel and kind is not ToolChoiceKind.NONE:
        out["disable_parallel_tool_use"] = True
    return out


def _thinking_on(config: ThinkingConfig) -> bool:
    if config.mode is ThinkingMode.DISABLED:
        return False
    return config.budget_tokens is not None or (config.effort or "").lower() not in _NO_THINKING_EFFORTS


def _thinking(config: ThinkingConfig | None, max_tokens: int) -> tuple[dict[str, Any] | None, int]:
    """The ``thinking`` field and the ``max_tokens`` that leaves room for it (docs/protocols/translation.md §5.2)."""
    if config is None:
        return None, max_tokens
    if not _thinking_on(config):
        return {"type": "disabled"}, max_tokens
    if config.mode is ThinkingMode.ADAPTIVE:
        return {"type": "adaptive"}, max_tokens
    budget = config.budget_tokens
    if budget is None:
        budget = _EFFORT_BUDGETS.get((config.effort or "medium").lower(), _EFFORT_BUDGETS["medium"])
    budget = max(budget, _MIN_BUDGET)
    if max_tokens <= budget:
        max_tokens = budget + _BUDGET_HEADROOM
    return {"type": "enabled", "budget_tokens": budget}, max_tokens


def _tool_loop_without_thinking(turns: list[Turn]) -> bool:
    """True when the request answers tool calls whose assistant turn does not open with a thinking block."""
    if len(turns) < 2 or turns[-1][0] != "user":
        return False
    if not any(b["type"] == "tool_result" for b in turns[-1][1]):
        return False
    role, blocks = turns[-2]
    return role == "assistant" and blocks[0]["type"] not in ("thinking", "redacted_thinking")
