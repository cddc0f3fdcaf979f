"""Client content blocks and turns to canonical parts and messages, validated.

Block types with no canonical counterpart (``document``, server-tool blocks, ``file`` image sources) are
skipped here: a same-dialect upstream still receives them through ``ChatRequest.raw``, and other dialects
could not carry them anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects._fields import (
    FieldError,
    as_array,
    as_object,
    optional_bool,
    optional_object,
    optional_str,
    required_str,
    wrong_type,
)
from apipod.dialects.anthropic._convert import input_to_arguments
from apipod.domain.chat import (
    ImagePart,
    Message,
    Part,
    RedactedThinkingPart,
    Role,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)

_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT, "system": Role.SYSTEM}
_ALLOWED: dict[Role, frozenset[str]] = {
    Role.USER: frozenset({"text", "image", "tool_result"}),
    Role.ASSISTANT: frozenset({"text", "tool_use", "thinking", "redacted_thinking"}),
    Role.SYSTEM: frozenset({"text"}),
}
# Known block types apipod does not model; anything else unknown is skipped as well (newer API features).
_CHECKED = frozenset({"text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"})


def text_part(block: Mapping[str, Any]) -> TextPart:
    return TextPart(required_str(block, "text"), cache_control=optional_object(block, "cache_control"))


def _image_part(block: Mapping[str, Any]) -> ImagePart | None:
    try:
        source = as_object(block.get("source"))
        kind = required_str(source, "type")
        if kind == "base64":
            return ImagePart(media_type=required_str(source, "media_type"), data=required_str(source, "data"))
        if kind == "url":
            return ImagePart(url=required_str(source, "url"))
    except FieldError as err:
        raise err.under("source") from None
    return None  # "file" sources and newer kinds live only in the raw body


def _tool_result(block: Mapping[str, Any]) -> ToolResultPart:
    tool_use_id = required_str(block, "tool_use_id")
    is_error = optional_bool(block, "is_error") or False
    content = block.get("content")
    if content is None:
        return ToolResultPart(tool_use_id, (), is_error=is_error)
    if isinstance(content, str):
        return ToolResultPart(tool_use_id, (TextPart(content),) if content else (), is_error=is_error)
    parts: list[TextPart | ImagePart] = []
    for j, item in enumerate(as_array(content, "content")):
        try:
            sub = as_object(item)
            kind = required_str(sub, "type")
            if kind == "text":
                parts.append(text_part(sub))
            elif kind == "image" and (image := _image_part(sub)) is not None:
                parts.append(image)
        except FieldError as err:
            raise err.under(f"content[{j}]") from None
    return ToolResultPart(tool_use_id, tuple(parts), is_error=is_error)


def _part(block: Mapping[str, Any], kind: str) -> Part | None:
    if kind == "text":
        return text_part(block)
    if kind == "image":
        return _image_part(block)
    if kind == "tool_use":
        return ToolUsePart(
            required_str(block, "id"), required_str(block, "name"), input_to_arguments(block.get("input"))
        )
    if kind == "tool_result":
        return _tool_result(block)
    if kind == "thinking":
        return ThinkingPart(required_str(block, "thinking"), optional_str(block, "signature") or "")
    if kind == "redacted_thinking":
        return RedactedThinkingPart(required_str(block, "data"))
    return None


def _parts(content: object, role: Role) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list | tuple):
        raise wrong_type("content", "a string or an array of content blocks", content)
    allowed = _ALLOWED[role]
    parts: list[Part] = []
    for j, item in enumerate(content):
        try:
            block = as_object(item)
            kind = required_str(block, "type")
            if kind in _CHECKED and kind not in allowed:
                raise FieldError("type", f"a {kind} block is not allowed in a {role.value} turn")
            part = _part(block, kind)
        except FieldError as err:
            raise err.under(f"content[{j}]") from None
        if part is not None:
            parts.append(part)
    return parts


def decode_turn(item: object) -> list[Message]:
    """One ``messages[i]`` entry as canonical messages.

    A user turn holding ``tool_result`` blocks becomes a ``tool`` message with the results (in order),
    followed by a ``user`` message for the other blocks when there are any.
    """
    turn = as_object(item)
    role_name = required_str(turn, "role")
    role = _ROLES.get(role_name)
    if role is None:
        raise FieldError("role", f"Input should be 'user', 'assistant' or 'system', got {role_name!r}")
    if "content" not in turn:
        raise FieldError("content", "Field required")
    parts = _parts(turn["content"], role)
    if role is not Role.USER or not any(isinstance(p, ToolResultPart) for p in parts):
        return [Message(role, tuple(parts))]
    results = tuple(p for p in parts if isinstance(p, ToolResultPart))
    rest = tuple(p for p in parts if not isinstance(p, ToolResultPart))
    messages = [Message(Role.TOOL, results)]
    if rest:
        messages.append(Message(Role.USER, rest))
    return messages
