"""Non-streamed answers: canonical ``ChatResult`` -> a Response object (docs/protocols/openai-responses.md §5, §8).

Each thinking part is one ``reasoning`` item, consecutive text parts one assistant ``message``, each tool call
one ``function_call`` or ``custom_tool_call`` item, in the answer's order. A reasoning item's signature travels
as its tagged ``encrypted_content`` (``reasoning_tags``) when the request's ``include`` asks for it; a part with
nothing else to show is then left out.
"""

from __future__ import annotations

from typing import Any

from apipod.dialects.responses.output_items import (
    Envelope,
    call_item,
    incomplete_reason,
    item_id,
    message_item,
    reasoning_item,
    wants_encrypted_content,
)
from apipod.dialects.responses.reasoning_tags import tag_redacted, tag_signature
from apipod.dialects.responses.tool_names import ToolNames
from apipod.domain.chat import ChatResult, RedactedThinkingPart, TextPart, ThinkingPart, ToolUsePart


def encode_response(result: ChatResult, body: dict[str, Any], *, response_id: str, created: int) -> dict[str, Any]:
    """The client's Response object. ``model`` is ``result.model`` (the name the client asked for); ``created``
    (Unix seconds) comes from the caller's clock so the codec stays pure."""
    output = output_items(result, body, response_id=response_id)
    envelope = Envelope(body, model=result.model, response_id=response_id, created=created)
    incomplete = incomplete_reason(result.finish_reason)
    status = "completed" if incomplete is None else "incomplete"
    return envelope.response(status, output, result.usage, incomplete=incomplete)


def output_items(result: ChatResult, body: dict[str, Any], *, response_id: str) -> list[dict[str, Any]]:
    encrypted = wants_encrypted_content(body)
    names = ToolNames(body.get("tools"))
    items: list[dict[str, Any]] = []
    texts: list[str] = []

    def flush_text() -> None:
        if texts:
            items.append(message_item(item_id("msg", response_id, len(items)), "".join(texts), "completed"))
            texts.clear()

    for part in result.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
            continue
        flush_text()
        if isinstance(part, ThinkingPart):
            content = tag_signature(part.origin or result.origin, part.signature) if part.signature else None
            if part.text or (encrypted and content):
                summary = [part.text] if part.text else []
                rid = item_id("rs", response_id, len(items))
                items.append(reasoning_item(rid, summary, content if encrypted else None, "completed"))
        elif isinstance(part, RedactedThinkingPart):
            if encrypted:
                content = tag_redacted(part.origin or result.origin, part.data)
                items.append(reasoning_item(item_id("rs", response_id, len(items)), [], content, "completed"))
        elif isinstance(part, ToolUsePart):
            tool = names.resolve(part.name)
            prefix = "ctc" if tool.custom else "fc"
            items.append(
                call_item(item_id(prefix, response_id, len(items)), part.id, tool, part.arguments, "completed")
            )
    flush_text()
    return items
