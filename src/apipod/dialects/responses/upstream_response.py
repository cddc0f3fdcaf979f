"""Upstream side: a Responses API answer (a Response object, docs/protocols/openai-responses.md §5, §7) ->
canonical ``ChatResult``.

Used when a Responses client's request is forwarded as it is to an upstream that serves ``/v1/responses``.
Reads leniently (a field of the wrong type counts as absent). Output items become parts in order:
``reasoning`` -> ``ThinkingPart`` (summary texts joined by a blank line, ``encrypted_content`` as the
signature, untagged: the client codec tags it with the origin), ``message`` -> ``TextPart`` (a refusal too),
``function_call`` -> ``ToolUsePart`` whose id is the ``call_id``, ``custom_tool_call`` -> ``ToolUsePart``
whose arguments are ``{"input": <text>}`` (the client codec unwraps it). Hosted-tool items are skipped: the
client sees them only through a same-dialect passthrough of its own stream, which apipod does not do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from apipod.dialects._counts import token_count
from apipod.dialects.responses.tool_names import flat_name
from apipod.dialects.upstream_faults import classify, stream_failure
from apipod.domain.chat import ChatResult, FinishReason, Part, TextPart, ThinkingPart, ToolUsePart, Usage
from apipod.domain.errors import UpstreamError

SUMMARY_SEPARATOR = "\n\n"
"""Between the summary parts of one reasoning item, as the client codec joins them."""

_INCOMPLETE = {"max_output_tokens": FinishReason.MAX_TOKENS, "content_filter": FinishReason.CONTENT_FILTER}


def decode_response(answer: Mapping[str, Any]) -> ChatResult:
    """An upstream's Response object.

    Raises:
        UpstreamError: the response failed (``status: "failed"``), classified by its ``error.code``.
    """
    if answer.get("status") == "failed" or (answer.get("error") and not answer.get("output")):
        raise failed_error(answer.get("error"))
    parts: list[Part] = []
    output = answer.get("output")
    for item in output if isinstance(output, list) else ():
        if isinstance(item, Mapping):
            parts.extend(item_parts(item))
    usage = answer.get("usage")
    answer_id, model = answer.get("id"), answer.get("model")
    return ChatResult(
        id=answer_id if isinstance(answer_id, str) else "",
        model=model if isinstance(model, str) else "",
        parts=tuple(parts),
        finish_reason=finish_reason(answer, saw_tool_call=any(isinstance(p, ToolUsePart) for p in parts)),
        usage=usage_from_wire(usage) if isinstance(usage, Mapping) else Usage(),
    )


def item_parts(item: Mapping[str, Any]) -> Iterable[Part]:
    """The canonical parts of one output item (none for an item apipod does not model)."""
    kind = item.get("type")
    if kind == "message":
        text = message_text(item)
        return (TextPart(text),) if text else ()
    if kind == "function_call":
        arguments = item.get("arguments")
        return (
            ToolUsePart(
                id=call_id(item),
                name=function_name(item),
                arguments=arguments if isinstance(arguments, str) and arguments else "{}",
            ),
        )
    if kind == "custom_tool_call":
        return (ToolUsePart(id=call_id(item), name=function_name(item), arguments=custom_arguments(item.get("input"))),)
    if kind == "reasoning":
        summary = summary_text(item)
        signature = encrypted_content(item)
        return (ThinkingPart(summary, signature=signature),) if summary or signature else ()
    return ()


def message_text(item: Mapping[str, Any]) -> str:
    """The ``output_text`` (or ``refusal``) parts of an output message, joined."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for part in content if isinstance(content, list) else ():
        if isinstance(part, Mapping):
            text = part.get("text") if part.get("type") != "refusal" else part.get("refusal")
            if isinstance(text, str):
                texts.append(text)
    return "".join(texts)


def summary_text(item: Mapping[str, Any]) -> str:
    """A reasoning item's summary texts (or, from open-weight models, its raw ``reasoning_text``)."""
    texts: list[str] = []
    for field in ("summary", "content"):
        value = item.get(field)
        for part in value if isinstance(value, list) else ():
            if isinstance(part, Mapping) and isinstance(text := part.get("text"), str) and text:
                texts.append(text)
        if texts:
            break
    return SUMMARY_SEPARATOR.join(texts)


def encrypted_content(item: Mapping[str, Any]) -> str:
    value = item.get("encrypted_content")
    return value if isinstance(value, str) else ""


def call_id(item: Mapping[str, Any]) -> str:
    """``call_id`` links a call to its output (``id`` is only the item's id, the fallback)."""
    value = item.get("call_id") or item.get("id")
    return value if isinstance(value, str) else ""


def function_name(item: Mapping[str, Any]) -> str:
    """The canonical name: a namespaced function (§4.3) is flattened as the client codec flattens its tools."""
    name = item.get("name")
    namespace = item.get("namespace")
    return flat_name(namespace if isinstance(namespace, str) else None, name if isinstance(name, str) else "")


def custom_arguments(text: object) -> str:
    """A free-form tool call's text as the canonical arguments of its one-string-parameter function."""
    return orjson.dumps({"input": text if isinstance(text, str) else ""}).decode()


def finish_reason(response: Mapping[str, Any], *, saw_tool_call: bool) -> FinishReason:
    """``incomplete`` -> its reason (a cut-off or a filter); otherwise a tool call or a normal stop."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        return _INCOMPLETE.get(reason, FinishReason.MAX_TOKENS) if isinstance(reason, str) else FinishReason.MAX_TOKENS
    return FinishReason.TOOL_USE if saw_tool_call else FinishReason.END_TURN


def usage_from_wire(usage: Mapping[str, Any]) -> Usage:
    """Responses counts already include cached input and reasoning output, as canonical ``Usage`` does."""
    input_details = usage.get("input_tokens_details")
    output_details = usage.get("output_tokens_details")
    return Usage(
        input_tokens=token_count(usage.get("input_tokens")),
        output_tokens=token_count(usage.get("output_tokens")),
        cached_input_tokens=_count(input_details, "cached_tokens"),
        cache_creation_input_tokens=_count(input_details, "cache_write_tokens"),
        reasoning_tokens=_count(output_details, "reasoning_tokens"),
    )


def error_codes(error: object) -> tuple[list[str], str]:
    """An error object's type/code values and its message (``{"code","message"}`` or ``{"type",...}``)."""
    if not isinstance(error, Mapping):
        return [], str(error) if error else ""
    codes = [str(error.get(name) or "") for name in ("type", "code")]
    message = error.get("message")
    return codes, message if isinstance(message, str) else ""


def failed_error(error: object) -> UpstreamError:
    """A failed response (sent with a success status) as the domain error its code stands for."""
    codes, message = error_codes(error)
    failure = stream_failure(None, codes=codes, message=message)
    return classify(None, codes).error(failure.message, detail=failure.detail)


def _count(obj: object, key: str) -> int:
    return token_count(obj.get(key)) if isinstance(obj, Mapping) else 0
