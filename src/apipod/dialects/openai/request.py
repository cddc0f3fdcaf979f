"""Client side: a ``/v1/chat/completions`` body -> canonical ``ChatRequest`` (docs/protocols/openai-chat.md §2-§4)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects._fields import (
    FieldError,
    Wording,
    as_array,
    as_object,
    missing,
    optional_bool,
    optional_int,
    optional_number,
    optional_str,
    required_str,
    wrong_type,
)
from apipod.dialects.openai.mapping import EFFORTS, thinking_from_effort
from apipod.dialects.openai.messages import decode_messages
from apipod.domain.chat import (
    ChatRequest,
    ResponseFormat,
    ResponseFormatKind,
    ThinkingConfig,
    ToolChoice,
    ToolChoiceKind,
    ToolSpec,
)
from apipod.domain.errors import InvalidRequestError

_CHOICES = {"auto": ToolChoiceKind.AUTO, "none": ToolChoiceKind.NONE, "required": ToolChoiceKind.REQUIRED}
# The largest output cap a client may ask for. The catalog has no per-model output limit to use instead, and
# no model writes a million tokens in one answer: a larger value (1e18, 2**70) is a client bug, refused here
# before it reaches quota arithmetic or an upstream.
MAX_OUTPUT_TOKENS = 1_000_000
# e.g. "Invalid 'messages[1].role': unknown role 'bot'; ..."
_WORDING = Wording(
    located="Invalid '{path}': {problem}",
    body="Invalid The request body: {problem}",
    required="this field is required.",
    wrong_type="expected {expected}, got {got}.",
    too_small="must be at least {minimum}, got {value}.",
    article=True,
)


def decode_request(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> ChatRequest:
    """Validate a client's body and convert it. ``raw`` is ``body`` itself (no copy), so a same-dialect
    upstream gets every field apipod does not model.

    Raises:
        InvalidRequestError: with the JSON path of the offending field in ``param``.
    """
    try:
        return _decode(as_object(body))
    except FieldError as error:
        raise error.to_invalid_request(_WORDING) from None


def _decode(body: Mapping[str, Any]) -> ChatRequest:
    model = required_str(body, "model")
    if not model:
        raise FieldError("model", "must not be empty.")
    system, messages = decode_messages(body.get("messages"))
    n = optional_int(body, "n", minimum=1)
    if n is not None and n > 1:
        raise InvalidRequestError("Only n=1 is supported: apipod returns a single choice.", param="n")
    options = body.get("stream_options")
    if options is not None:
        as_object(options, "stream_options")
    tools = _tools(body.get("tools"))
    parallel = optional_bool(body, "parallel_tool_calls")
    return ChatRequest(
        model=model,
        messages=messages,
        system=system,
        tools=tools,
        tool_choice=_tool_choice(body.get("tool_choice"), parallel),
        parallel_tool_calls=parallel,
        max_output_tokens=_max_tokens(body),
        temperature=optional_number(body, "temperature"),
        top_p=optional_number(body, "top_p"),
        stop=_stop(body.get("stop")),
        stream=bool(optional_bool(body, "stream")),
        thinking=_thinking(body),
        user=optional_str(body, "user"),
        dialect="openai",
        raw=body,
        response_format=_response_format(body.get("response_format")),
    )


def _max_tokens(body: Mapping[str, Any]) -> int | None:
    """Either cap may be sent; with both, the smaller one holds (docs/protocols/openai-chat.md §9.2)."""
    legacy = _bounded(body, "max_tokens")
    newer = _bounded(body, "max_completion_tokens")
    if legacy is None or newer is None:
        return newer if legacy is None else legacy
    return min(legacy, newer)


def _bounded(body: Mapping[str, Any], key: str) -> int | None:
    value = optional_int(body, key, minimum=1)
    if value is not None and value > MAX_OUTPUT_TOKENS:
        raise FieldError(key, f"must be at most {MAX_OUTPUT_TOKENS}, got {value}.")
    return value


def _stop(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    items = as_array(value, "stop")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise wrong_type(f"stop[{index}]", "a string", item)
    return tuple(item for item in items if item)


def _thinking(body: Mapping[str, Any]) -> ThinkingConfig | None:
    effort = optional_str(body, "reasoning_effort")
    if effort is None:
        return None
    thinking = thinking_from_effort(effort)
    if thinking is None:
        raise FieldError("reasoning_effort", f"unknown value '{effort}'; expected one of {', '.join(EFFORTS)}.")
    return thinking


def _response_format(value: object) -> ResponseFormat | None:
    """``{"type": "json_object"}`` or ``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``;
    ``text`` (the default) is no constraint."""
    if value is None:
        return None
    spec = as_object(value, "response_format")
    kind = spec.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat(kind=ResponseFormatKind.JSON_OBJECT)
    if kind != "json_schema":
        raise FieldError("response_format.type", f"unknown value {kind!r}; expected text, json_object or json_schema.")
    try:
        details = as_object(spec.get("json_schema"), "json_schema")
        try:
            schema = details.get("schema")
            return ResponseFormat(
                kind=ResponseFormatKind.JSON_SCHEMA,
                schema=None if schema is None else as_object(schema, "schema"),
                name=optional_str(details, "name"),
                strict=optional_bool(details, "strict"),
            )
        except FieldError as error:
            raise error.under("json_schema") from None
    except FieldError as error:
        raise error.under("response_format") from None


def _tools(value: object) -> tuple[ToolSpec, ...]:
    """Function tools. Other kinds (``custom``) are OpenAI-only: kept in ``raw``, absent from the model."""
    if value is None:
        return ()
    specs: list[ToolSpec] = []
    for index, item in enumerate(as_array(value, "tools")):
        try:
            tool = as_object(item)
            if tool.get("type", "function") != "function":
                continue
            specs.append(_function(tool.get("function")))
        except FieldError as error:
            raise error.under(f"tools[{index}]") from None
    return tuple(specs)


def _function(value: object) -> ToolSpec:
    if value is None:
        raise missing("function")
    try:
        function = as_object(value)
        name = required_str(function, "name")
        description = optional_str(function, "description") or ""
        parameters = function.get("parameters")
        if parameters is None:
            return ToolSpec(name=name, description=description)
        return ToolSpec(name=name, description=description, parameters=as_object(parameters, "parameters"))
    except FieldError as error:
        raise error.under("function") from None


def _tool_choice(value: object, parallel: bool | None) -> ToolChoice | None:
    disable_parallel = parallel is False
    if value is None:
        return None
    if isinstance(value, str):
        kind = _CHOICES.get(value)
        if kind is None:
            raise FieldError("tool_choice", f"unknown value '{value}'; expected auto, none, required or an object.")
        return ToolChoice(kind, disable_parallel=disable_parallel)
    choice = as_object(value, "tool_choice")
    if choice.get("type") != "function":
        return None  # allowed_tools / custom forms: OpenAI-only, kept in raw
    function = choice.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    if not isinstance(name, str):
        raise wrong_type("tool_choice.function.name", "a string", name)
    return ToolChoice(ToolChoiceKind.TOOL, name=name, disable_parallel=disable_parallel)
