"""Output items and the Response object around them (docs/protocols/openai-responses.md §5, §7), shared by
the non-streamed and the streamed encoder.

Item ids are derived from the response id and the item's index (``msg_<base>_0``, ``rs_<base>_1``...): unique
per response, and across responses since the response id is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects.responses.tool_names import ClientTool
from apipod.domain.chat import FinishReason, Usage

ENCRYPTED_CONTENT = "reasoning.encrypted_content"
_RESPONSE_PREFIX = "resp_"
_INCOMPLETE: dict[FinishReason, str] = {
    FinishReason.MAX_TOKENS: "max_output_tokens",
    FinishReason.CONTENT_FILTER: "content_filter",
}
# Request settings echoed in the Response object, as OpenAI does; absent ones are null.
_ECHOED = (
    "instructions",
    "max_output_tokens",
    "max_tool_calls",
    "previous_response_id",
    "prompt_cache_key",
    "safety_identifier",
    "temperature",
    "top_p",
    "top_logprobs",
    "user",
)


def wants_encrypted_content(body: Mapping[str, Any]) -> bool:
    include = body.get("include")
    return isinstance(include, list) and ENCRYPTED_CONTENT in include


def item_id(prefix: str, response_id: str, index: int) -> str:
    base = response_id[len(_RESPONSE_PREFIX) :] if response_id.startswith(_RESPONSE_PREFIX) else response_id
    return f"{prefix}_{base}_{index}"


def usage_to_wire(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def incomplete_reason(reason: FinishReason) -> str | None:
    """``incomplete_details.reason`` for an answer cut short; None for one that completed."""
    return _INCOMPLETE.get(reason)


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if status != "in_progress" else []
    )
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, summary: list[str], encrypted: str | None, status: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text} for text in summary],
        "status": status,
    }
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def call_item(item_id: str, call_id: str, tool: ClientTool, arguments: str, status: str) -> dict[str, Any]:
    """A ``function_call`` or, for a tool the client declared ``custom``, a ``custom_tool_call`` whose
    ``input`` is the unwrapped string."""
    item: dict[str, Any]
    if tool.custom:
        text = custom_input(arguments) if status != "in_progress" else ""
        item = {"id": item_id, "type": "custom_tool_call", "status": status, "call_id": call_id, "name": tool.name}
        item["input"] = text
    else:
        item = {"id": item_id, "type": "function_call", "status": status, "call_id": call_id, "name": tool.name}
        item["arguments"] = arguments
    if tool.namespace:
        item["namespace"] = tool.namespace
    return item


def custom_input(arguments: str) -> str:
    """The free-form text of a custom tool call made as a one-string function: ``{"input": "..."}``. Anything
    else (a model that answered the raw text itself) is taken as the text."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(text := value.get("input"), str):
        return text
    return "" if value == {} else arguments  # ``{}``: a call made without arguments


class Envelope:
    """The Response object of one answer: the request's settings are read once, the answer's state is filled
    in per call."""

    __slots__ = ("_base",)

    def __init__(self, body: Mapping[str, Any], *, model: str, response_id: str, created: int) -> None:
        base: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": created,
            "status": "in_progress",
            "background": False,
            "error": None,
            "incomplete_details": None,
            "model": model,
            "output": [],
            "parallel_tool_calls": _bool(body.get("parallel_tool_calls"), default=True),
            "tool_choice": body.get("tool_choice") if isinstance(body.get("tool_choice"), str | dict) else "auto",
            "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
            "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
            "reasoning": body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None,
            "store": _bool(body.get("store"), default=True),
            "text": _text(body.get("text")),
            "truncation": body.get("truncation") if body.get("truncation") in ("auto", "disabled") else "disabled",
            "usage": None,
        }
        for key in _ECHOED:
            base[key] = body.get(key)
        self._base = base

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None = None,
        *,
        incomplete: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = dict(self._base)
        response["status"] = status
        response["output"] = output
        if usage is not None:
            response["usage"] = usage_to_wire(usage)
        if incomplete is not None:
            response["incomplete_details"] = {"reason": incomplete}
        if error is not None:
            response["error"] = error
        return response


def _bool(value: object, *, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _text(value: object) -> dict[str, Any]:
    """``text`` as OpenAI echoes it: the format is always there (``text`` by default)."""
    text = dict(value) if isinstance(value, dict) else {}
    if not isinstance(text.get("format"), dict):
        text["format"] = {"type": "text"}
    return text
