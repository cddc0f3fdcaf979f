"""Non-streamed answers: canonical ``ChatResult`` <-> ``chat.completion`` (docs/protocols/openai-chat.md §5).

``decode_response`` reads upstream answers leniently: a field of the wrong type counts as absent. Reasoning
arrives under vendor names (``reasoning_content``, OpenRouter's ``reasoning``, Copilot's
``reasoning_text`` with ``reasoning_opaque``); all become one ``ThinkingPart``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects.openai.mapping import (
    finish_from_wire,
    finish_to_wire,
    signature_field,
    signature_of,
    usage_from_wire,
    usage_to_wire,
)
from apipod.domain.chat import ChatResult, Part, TextPart, ThinkingPart, ToolUsePart, Usage
from apipod.domain.errors import UpstreamError

REASONING_FIELDS = ("reasoning_content", "reasoning", "reasoning_text")


def completion_id(result_id: str) -> str:
    """OpenAI clients expect ``chatcmpl-`` ids; an upstream's own id is kept inside it."""
    return result_id if result_id.startswith("chatcmpl") else f"chatcmpl-{result_id}"


def encode_response(result: ChatResult, *, model: str, created: int) -> dict[str, Any]:
    """The client's ``chat.completion``. ``model`` is the name the client asked for; ``created`` (Unix
    seconds) comes from the caller's clock so the codec stays pure."""
    texts: list[str] = []
    thoughts: list[str] = []
    opaque = ""
    calls: list[dict[str, Any]] = []
    for part in result.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, ThinkingPart):
            thoughts.append(part.text)
            opaque = part.signature or opaque
        elif isinstance(part, ToolUsePart):
            calls.append(_tool_call(part))
    text = "".join(texts)
    message: dict[str, Any] = {"role": "assistant", "content": text or (None if calls else ""), "refusal": None}
    thinking = "".join(thoughts)
    if thinking:
        message["reasoning_content"] = thinking
    if opaque:
        # The thinking's continuity token (Copilot's name for it), so the client can send it back.
        message["reasoning_opaque"] = opaque
    if calls:
        message["tool_calls"] = calls
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_to_wire(result.finish_reason, saw_tool_call=bool(calls)),
    }
    return {
        "id": completion_id(result.id),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage_to_wire(result.usage),
    }


def _tool_call(part: ToolUsePart) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": part.id,
        "type": "function",
        "function": {"name": part.name, "arguments": part.arguments},
    }
    if part.signature:
        call["extra_content"] = signature_field(part.signature)
    return call


def decode_response(body: Mapping[str, Any]) -> ChatResult:
    """An upstream's ``chat.completion``. Only the first choice is read (apipod asks for one).

    Raises:
        UpstreamError: the body is an error object sent with a success status.
    """
    # parsed JSON: objects are dicts, and ``isinstance(x, dict)`` skips the ABC check of ``Mapping`` (PERF)
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    if not choice and isinstance(body.get("error"), dict | str):
        raise UpstreamError(f"The upstream answered with an error: {_error_message(body['error'])}")
    message = choice.get("message")
    parts = _parts(message) if isinstance(message, dict) else ()
    usage = body.get("usage")
    body_id, model = body.get("id"), body.get("model")
    return ChatResult(
        id=body_id if isinstance(body_id, str) else "",
        model=model if isinstance(model, str) else "",
        parts=parts,
        finish_reason=finish_from_wire(
            choice.get("finish_reason"), saw_tool_call=any(isinstance(p, ToolUsePart) for p in parts)
        ),
        usage=usage_from_wire(usage) if isinstance(usage, dict) else Usage(),
    )


def _parts(message: Mapping[str, Any]) -> tuple[Part, ...]:
    parts: list[Part] = []
    thinking = reasoning_text(message)
    opaque = message.get("reasoning_opaque")
    signature = opaque if isinstance(opaque, str) else ""
    if thinking or signature:
        parts.append(ThinkingPart(thinking, signature=signature))
    text = content_text(message.get("content"))
    if not text:
        refusal = message.get("refusal")
        text = refusal if isinstance(refusal, str) else ""
    if text:
        parts.append(TextPart(text))
    calls = message.get("tool_calls")
    if isinstance(calls, list):
        parts.extend(part for call in calls if (part := _decode_call(call)) is not None)
    return tuple(parts)


def reasoning_text(message: Mapping[str, Any]) -> str:
    """The first non-empty vendor reasoning field (OpenRouter may send more than one for the same text)."""
    for field in REASONING_FIELDS:
        value = message.get(field)
        if isinstance(value, str) and value:
            return value
    return ""


def content_text(content: object) -> str:
    """String content, or the joined texts of a part array (some compatible upstreams answer so)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            t
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text" and isinstance(t := p.get("text"), str)
        )
    return ""


def _decode_call(call: object) -> ToolUsePart | None:
    if not isinstance(call, Mapping):
        return None
    function = call.get("function")
    if not isinstance(function, Mapping) or not isinstance(name := function.get("name"), str):
        return None
    call_id, arguments = call.get("id"), function.get("arguments")
    if isinstance(arguments, Mapping | list):
        arguments = orjson.dumps(arguments).decode()
    return ToolUsePart(
        id=call_id if isinstance(call_id, str) else "",
        name=name,
        arguments=arguments if isinstance(arguments, str) and arguments else "{}",
        signature=signature_of(call),
    )


def _error_message(error: object) -> str:
    if isinstance(error, Mapping) and isinstance(message := error.get("message"), str):
        return message
    return error if isinstance(error, str) else "unknown error"
