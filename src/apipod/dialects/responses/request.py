"""Client side: a ``/v1/responses`` body -> canonical ``ChatRequest`` (docs/protocols/openai-responses.md §2-§4).

``previous_response_id`` is not read here: the HTTP layer has already expanded it into ``input``
(``history.continued``). ``reasoning.summary`` alone does not turn thinking on (Codex sends
``{"summary": "auto"}`` for every model it does not know); only an ``effort`` sets ``ChatRequest.thinking``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects._fields import (
    FieldError,
    Wording,
    as_object,
    optional_bool,
    optional_int,
    optional_number,
    optional_object,
    optional_str,
    required_str,
)
from apipod.dialects.openai.mapping import EFFORTS, thinking_from_effort
from apipod.dialects.openai.request import MAX_OUTPUT_TOKENS
from apipod.dialects.responses.input_items import decode_input
from apipod.dialects.responses.tools import decode_tool_choice, decode_tools
from apipod.domain.chat import ChatRequest, ResponseFormat, ResponseFormatKind, TextPart, ThinkingConfig

DIALECT = "responses"
# e.g. "Invalid 'input[3].role': unknown role 'bot'; ..." (OpenAI's wording)
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
    upstream gets every field apipod does not model (hosted tools, ``include``, reasoning items...).

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
    system: list[TextPart] = []
    instructions = optional_str(body, "instructions")
    if instructions:
        system.append(TextPart(instructions))
    messages, origins = decode_input(body.get("input"), system)
    parallel = optional_bool(body, "parallel_tool_calls")
    user = optional_str(body, "user")
    safety = optional_str(body, "safety_identifier")
    return ChatRequest(
        model=model,
        messages=messages,
        system=tuple(system),
        tools=decode_tools(body.get("tools")),
        tool_choice=decode_tool_choice(body.get("tool_choice"), parallel),
        parallel_tool_calls=parallel,
        max_output_tokens=_max_output_tokens(body),
        temperature=optional_number(body, "temperature"),
        top_p=optional_number(body, "top_p"),
        stream=bool(optional_bool(body, "stream")),
        thinking=_thinking(body),
        user=user or safety,
        metadata=_metadata(body),
        dialect=DIALECT,
        raw=body,
        response_format=_response_format(body),
        signed_origins=origins,
    )


def _max_output_tokens(body: Mapping[str, Any]) -> int | None:
    value = optional_int(body, "max_output_tokens", minimum=1)
    if value is not None and value > MAX_OUTPUT_TOKENS:
        raise FieldError("max_output_tokens", f"must be at most {MAX_OUTPUT_TOKENS}, got {value}.")
    return value


def _thinking(body: Mapping[str, Any]) -> ThinkingConfig | None:
    reasoning = optional_object(body, "reasoning")
    if reasoning is None:
        return None
    try:
        effort = optional_str(reasoning, "effort")
    except FieldError as error:
        raise error.under("reasoning") from None
    if effort is None:
        return None
    thinking = thinking_from_effort(effort)
    if thinking is None:
        raise FieldError("reasoning.effort", f"unknown value '{effort}'; expected one of {', '.join(EFFORTS)}.")
    return thinking


def _metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = optional_object(body, "metadata")
    if metadata is None:
        return {}
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise FieldError(f"metadata.{key}", "metadata values must be strings.")
    return metadata


def _response_format(body: Mapping[str, Any]) -> ResponseFormat | None:
    text = optional_object(body, "text")
    if text is None:
        return None
    try:
        fmt = optional_object(text, "format")
    except FieldError as error:
        raise error.under("text") from None
    if fmt is None:
        return None
    try:
        kind = required_str(fmt, "type")
        if kind == "json_object":
            return ResponseFormat(kind=ResponseFormatKind.JSON_OBJECT)
        if kind == "json_schema":
            schema = fmt.get("schema")
            return ResponseFormat(
                kind=ResponseFormatKind.JSON_SCHEMA,
                schema=as_object(schema, "schema") if schema is not None else None,
                name=optional_str(fmt, "name"),
                strict=optional_bool(fmt, "strict"),
            )
        if kind == "text":
            return None
        raise FieldError("type", f"unknown value '{kind}'; expected text, json_object or json_schema.")
    except FieldError as error:
        raise error.under("text.format") from None
