"""Client side: an Anthropic Messages request body to a canonical ``ChatRequest``, validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects._fields import (
    FieldError,
    Wording,
    as_array,
    as_object,
    optional_bool,
    optional_int,
    optional_number,
    optional_object,
    optional_str,
    required_str,
    wrong_type,
)
from apipod.dialects.anthropic._blocks import decode_turn, text_part
from apipod.domain.chat import (
    ChatRequest,
    Message,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ToolChoice,
    ToolChoiceKind,
    ToolSpec,
)
from apipod.domain.errors import InvalidRequestError

_CHOICES = {
    "auto": ToolChoiceKind.AUTO,
    "any": ToolChoiceKind.REQUIRED,
    "tool": ToolChoiceKind.TOOL,
    "none": ToolChoiceKind.NONE,
}
_FORWARDED_HEADERS = ("anthropic-beta",)
# The largest max_tokens a client may ask for. The catalog has no per-model output limit to use instead, and
# no model writes a million tokens in one answer: a larger value (1e18, 2**70) is a client bug, refused here
# before it reaches quota arithmetic or an upstream.
MAX_OUTPUT_TOKENS = 1_000_000
# Anthropic's own validation messages, e.g. "max_tokens: Field required".
_WORDING = Wording(
    located="{path}: {problem}",
    body="{problem}",
    required="Field required",
    wrong_type="Input should be {expected}, got {got}",
    too_small="Input should be greater than or equal to {minimum}",
    article=False,
)


def decode_request(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> ChatRequest:
    """Validate and convert a ``POST /v1/messages`` body. ``raw`` is ``body`` itself (no copy).

    Raises:
        InvalidRequestError: a field is missing or has the wrong type; ``param`` holds its JSON path.
    """
    return _decode(body, headers, require_max_tokens=True)


def decode_count_tokens_request(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> ChatRequest:
    """As ``decode_request`` for ``POST /v1/messages/count_tokens``, whose body has no ``max_tokens``."""
    return _decode(body, headers, require_max_tokens=False)


def _decode(body: Mapping[str, Any], headers: Mapping[str, str] | None, *, require_max_tokens: bool) -> ChatRequest:
    received: object = body  # a client may send any JSON value
    if not isinstance(received, Mapping):
        raise InvalidRequestError("The request body must be a JSON object")
    try:
        return _request(body, headers, require_max_tokens=require_max_tokens)
    except FieldError as err:
        raise err.to_invalid_request(_WORDING) from None


def _request(body: Mapping[str, Any], headers: Mapping[str, str] | None, *, require_max_tokens: bool) -> ChatRequest:
    model = required_str(body, "model")
    max_tokens = optional_int(body, "max_tokens")
    if max_tokens is None and require_max_tokens:
        raise FieldError("max_tokens", "Field required")
    if max_tokens is not None and max_tokens < 1:
        raise FieldError("max_tokens", "Input should be greater than or equal to 1")
    if max_tokens is not None and max_tokens > MAX_OUTPUT_TOKENS:
        raise FieldError("max_tokens", f"Input should be less than or equal to {MAX_OUTPUT_TOKENS}")
    if "messages" not in body:
        raise FieldError("messages", "Field required")
    messages: list[Message] = []
    for i, item in enumerate(as_array(body["messages"], "messages")):
        try:
            messages.extend(decode_turn(item))
        except FieldError as err:
            raise err.under(f"messages[{i}]") from None
    metadata = optional_object(body, "metadata")
    user: str | None = None
    if metadata is not None:
        try:
            user = optional_str(metadata, "user_id")
        except FieldError as err:
            raise err.under("metadata") from None
    tools = _tools(body.get("tools"))
    tool_choice = _tool_choice(body.get("tool_choice"))
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        system=_system(body.get("system")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=False if tool_choice is not None and tool_choice.disable_parallel else None,
        max_output_tokens=max_tokens,
        temperature=optional_number(body, "temperature"),
        top_p=optional_number(body, "top_p"),
        top_k=optional_int(body, "top_k"),
        stop=_stop_sequences(body.get("stop_sequences")),
        stream=optional_bool(body, "stream") or False,
        thinking=_thinking(body.get("thinking")),
        user=user,
        metadata=metadata or {},
        dialect="anthropic",
        raw=body,
        raw_headers=_forwarded(headers),
    )


def _system(value: object) -> tuple[TextPart, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (TextPart(value),) if value else ()
    parts: list[TextPart] = []
    for j, item in enumerate(as_array(value, "system")):
        try:
            block = as_object(item)
            if block.get("type") != "text":
                raise FieldError("type", "system blocks must be of type 'text'")
            parts.append(text_part(block))
        except FieldError as err:
            raise err.under(f"system[{j}]") from None
    return tuple(parts)


def _tools(value: object) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    specs: list[ToolSpec] = []
    for j, item in enumerate(as_array(value, "tools")):
        try:
            tool = as_object(item)
            kind = optional_str(tool, "type")
            name = required_str(tool, "name")
            if kind not in (None, "custom"):
                continue  # a server tool (web_search_*, bash_*...): Anthropic-native upstreams only
            schema = optional_object(tool, "input_schema")
            if schema is None:
                raise FieldError("input_schema", "Field required")
            specs.append(ToolSpec(name=name, description=optional_str(tool, "description") or "", parameters=schema))
        except FieldError as err:
            raise err.under(f"tools[{j}]") from None
    return tuple(specs)


def _tool_choice(value: object) -> ToolChoice | None:
    if value is None:
        return None
    try:
        choice = as_object(value)
        kind_name = required_str(choice, "type")
        kind = _CHOICES.get(kind_name)
        if kind is None:
            raise FieldError("type", f"Input should be 'auto', 'any', 'tool' or 'none', got {kind_name!r}")
        name = required_str(choice, "name") if kind is ToolChoiceKind.TOOL else None
        disable = optional_bool(choice, "disable_parallel_tool_use") or False
    except FieldError as err:
        raise err.under("tool_choice") from None
    return ToolChoice(kind, name=name, disable_parallel=disable)


def _thinking(value: object) -> ThinkingConfig | None:
    if value is None:
        return None
    try:
        thinking = as_object(value)
        mode_name = required_str(thinking, "type")
        if mode_name == "enabled":
            budget = optional_int(thinking, "budget_tokens")
            if budget is None:
                raise FieldError("budget_tokens", "Field required")
            return ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=budget)
        if mode_name == "disabled":
            return ThinkingConfig(ThinkingMode.DISABLED)
        if mode_name == "adaptive":
            return ThinkingConfig(ThinkingMode.ADAPTIVE)
        raise FieldError("type", f"Input should be 'enabled', 'disabled' or 'adaptive', got {mode_name!r}")
    except FieldError as err:
        raise err.under("thinking") from None


def _stop_sequences(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    items = as_array(value, "stop_sequences")
    for j, item in enumerate(items):
        if not isinstance(item, str):
            raise wrong_type(f"stop_sequences[{j}]", "a string", item)
    return tuple(items)


def _forwarded(headers: Mapping[str, str] | None) -> dict[str, str]:
    if not headers:
        return {}
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _FORWARDED_HEADERS:
            kept[lowered] = value
    return kept
