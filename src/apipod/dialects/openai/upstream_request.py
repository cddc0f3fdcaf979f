"""Upstream side: canonical ``ChatRequest`` -> the body for an OpenAI-compatible upstream.

Same dialect: the client's body goes through untouched but for ``model``/``stream``/``stream_options``.
Another dialect (a Responses or Gemini client's too: their ``raw`` is never read here): built from canonical
fields, ``response_format`` included. Thinking history is dropped (OpenAI proper rejects
``reasoning_content`` in requests) and so is anything without an OpenAI equivalent (``top_k``,
``metadata``, cache hints).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects.openai.mapping import EFFORTS, data_url, effort_from_thinking, signature_field
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
    ThinkingPart,
    ToolChoice,
    ToolChoiceKind,
    ToolResultPart,
    ToolUsePart,
)

_MAX_STOP = 4  # OpenAI accepts at most four stop sequences


def encode_request(request: ChatRequest, *, model: str, stream: bool, reasoning_opaque: bool = False) -> dict[str, Any]:
    """The upstream body. Streaming always asks for usage (``stream_options.include_usage``): apipod bills
    from it. ``reasoning_opaque`` sends signed thinking back as ``reasoning_text`` + ``reasoning_opaque``
    (Copilot needs it; OpenAI itself would reject the fields)."""
    if request.dialect == "openai" and request.raw is not None:
        return _passthrough(request.raw, model=model, stream=stream)
    body: dict[str, Any] = {"model": model, "messages": _messages(request, reasoning_opaque)}
    if request.tools:
        body["tools"] = [_tool(spec.name, spec.description, spec.parameters) for spec in request.tools]
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice(request.tool_choice)
        parallel = request.parallel_tool_calls
        if parallel is None and request.tool_choice is not None and request.tool_choice.disable_parallel:
            parallel = False
        if parallel is not None:
            body["parallel_tool_calls"] = parallel
    if request.max_output_tokens is not None:
        # NOTE: the newer cap: OpenAI's reasoning models reject max_tokens, most others ignore what they lack.
        body["max_completion_tokens"] = request.max_output_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop[:_MAX_STOP])
    if request.user:
        body["user"] = request.user
    effort = _effort(request.thinking)
    if effort is not None:
        body["reasoning_effort"] = effort
    if request.response_format is not None:
        response_format = encode_response_format(request.response_format)
        if response_format is not None:
            body["response_format"] = response_format
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _effort(thinking: ThinkingConfig | None) -> str | None:
    """The client's own effort word when it said one (a Responses client does), else one from the budget."""
    if thinking is not None and thinking.mode is ThinkingMode.ENABLED and thinking.effort in EFFORTS:
        return thinking.effort
    return effort_from_thinking(thinking)


def encode_response_format(spec: ResponseFormat) -> dict[str, Any] | None:
    """Chat Completions' ``response_format``; None for plain text (the default, not worth sending)."""
    if spec.kind is ResponseFormatKind.JSON_OBJECT or (spec.kind is ResponseFormatKind.JSON_SCHEMA and not spec.schema):
        return {"type": "json_object"}
    if spec.kind is ResponseFormatKind.JSON_SCHEMA:
        schema: dict[str, Any] = {"name": spec.name or "response", "schema": spec.schema}
        if spec.strict is not None:
            schema["strict"] = spec.strict
        return {"type": "json_schema", "json_schema": schema}
    return None


def _passthrough(raw: Mapping[str, Any], *, model: str, stream: bool) -> dict[str, Any]:
    body = dict(raw)
    body["model"] = model
    body["stream"] = stream
    if stream:
        options = raw.get("stream_options")
        body["stream_options"] = (
            {**options, "include_usage": True} if isinstance(options, Mapping) else {"include_usage": True}
        )
    else:
        body.pop("stream_options", None)  # only valid with stream: true
    return body


def _messages(request: ChatRequest, opaque: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = request.system_text()
    if system:
        out.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role is Role.USER:
            content = _user_content(message.parts)
            if content:
                out.append({"role": "user", "content": content})
        elif message.role is Role.ASSISTANT:
            assistant = _assistant(message, opaque)
            if assistant is not None:
                out.append(assistant)
        elif message.role is Role.TOOL:
            out.extend(_tool_messages(message))
        else:  # Role.SYSTEM: a system turn in place
            text = message.text()
            if text:
                out.append({"role": "system", "content": text})
    return out


def _user_content(parts: tuple[Any, ...]) -> str | list[dict[str, Any]]:
    """A plain string when the turn is text only (what every compatible upstream accepts)."""
    items = [item for part in parts if (item := _content_part(part)) is not None]
    if not items:
        return ""
    if len(items) == 1 and items[0]["type"] == "text":
        return str(items[0]["text"])
    return items


def _content_part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ImagePart):
        if part.data is not None:
            return {"type": "image_url", "image_url": {"url": data_url(part.media_type, part.data)}}
        if part.url:
            return {"type": "image_url", "image_url": {"url": part.url}}
    return None


def _assistant(message: Message, opaque: bool) -> dict[str, Any] | None:
    """Text joined into one string (Copilot accepts nothing else), tool calls with their signatures;
    images are dropped, and thinking too unless ``opaque`` asks for signed thinking. ``None`` when nothing
    is left."""
    text = message.text()
    calls = [_tool_call(part) for part in message.parts if isinstance(part, ToolUsePart)]
    if not text and not calls:
        return None
    out: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        out["tool_calls"] = calls
    if opaque:
        signed = [p for p in message.parts if isinstance(p, ThinkingPart) and p.signature]
        if signed:
            out["reasoning_text"] = "".join(p.text for p in signed)
            out["reasoning_opaque"] = signed[-1].signature
    return out


def _tool_call(part: ToolUsePart) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": part.id,
        "type": "function",
        "function": {"name": part.name, "arguments": part.arguments or "{}"},
    }
    if part.signature:
        call["extra_content"] = signature_field(part.signature)
    return call


def _tool_messages(message: Message) -> list[dict[str, Any]]:
    """One ``tool`` message per result; images (which ``tool`` messages cannot hold) and any other
    content follow in one ``user`` message (docs/protocols/translation.md §4.2)."""
    out: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            text = part.text()
            out.append({"role": "tool", "tool_call_id": part.tool_use_id, "content": _result_text(text, part)})
            extra.extend(item for p in part.content if isinstance(p, ImagePart) and (item := _content_part(p)))
        elif (item := _content_part(part)) is not None:
            extra.append(item)
    if extra:
        out.append({"role": "user", "content": extra})
    return out


def _result_text(text: str, part: ToolResultPart) -> str:
    return f"Error: {text}" if part.is_error else text


def _tool(name: str, description: str, parameters: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if description:
        function["description"] = description
    function["parameters"] = parameters if isinstance(parameters, dict) else dict(parameters)
    return {"type": "function", "function": function}


def _tool_choice(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.kind is ToolChoiceKind.TOOL and choice.name:
        return {"type": "function", "function": {"name": choice.name}}
    if choice.kind is ToolChoiceKind.TOOL:
        return "required"
    return choice.kind.value  # auto / none / required are spelled the same
