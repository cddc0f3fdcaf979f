"""A scriptable fake of the Anthropic Messages API (docs/protocols/anthropic-messages.md): ``POST /v1/messages`` and
``GET /v1/models``, with Anthropic's error shapes. Point an adapter at ``<base>`` (no ``/v1``).

Like the real API it wants ``x-api-key`` and ``anthropic-version``, and ``model``, ``messages`` and
``max_tokens`` in the body. Without a script it echoes the last user message (``"Echo: <text>"``) with
usage; streaming follows §6.2 (message_start, one text block with a ping, message_delta, message_stop).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from tests.fakes.scripted import Recorded, Reply, ScriptedUpstream, sse_frames, sse_frames_from_fixture, words

__all__ = ["FakeAnthropic", "anthropic_frames", "error_body", "sse_frames", "sse_frames_from_fixture"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str, *, kind: str | None = None) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": kind or _ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": "req_fake",
    }


def anthropic_frames(events: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """``event: <type>\\ndata: <json>\\n\\n`` frames."""
    return [b"event: " + str(e["type"]).encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events]


class FakeAnthropic(ScriptedUpstream):
    """``keys``: the API keys accepted (any when empty). ``models``: what ``/v1/models`` lists."""

    def __init__(
        self, *, keys: Iterable[str] = (), models: Iterable[str] = ("claude-sonnet-4-5", "claude-haiku-4-5")
    ) -> None:
        super().__init__(keys=keys, models=models)

    def reply_error(
        self, status: int, message: str, *, kind: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        self.reply_json(error_body(status, message, kind=kind), status=status, headers=headers)

    def respond(self, request: Recorded) -> Reply:
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not key:
            return _error(401, "x-api-key header is required")
        if self.keys and key not in self.keys:
            return _error(401, "invalid x-api-key")
        if "anthropic-version" not in request.headers:
            return _error(400, "anthropic-version: header is required")
        if request.method == "GET" and request.path == "/v1/models":
            return self.scripted() or Reply(body=self._models(request.query))
        if request.method != "POST" or request.path != "/v1/messages":
            return _error(404, "Not Found")
        body = request.body
        if not isinstance(body, dict):
            return _error(400, "The request body is not valid JSON.")
        for field in ("model", "messages", "max_tokens"):
            if field not in body:
                return _error(400, f"{field}: Field required")
        return self.scripted() or self._default(body)

    def _models(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        limit = int(query.get("limit", ["20"])[0])
        after = query.get("after_id", [None])[0]
        start = self.models.index(after) + 1 if after in self.models else 0
        page = self.models[start : start + limit]
        return {
            "data": [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"} for m in page],
            "has_more": start + limit < len(self.models),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    def _default(self, body: dict[str, Any]) -> Reply:
        text = "Echo: " + _last_user_text(body["messages"])
        model = str(body["model"])
        prompt = max(1, len(orjson.dumps(body["messages"])) // 4)
        pieces = words(text)
        usage = {
            "input_tokens": prompt,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": len(pieces),
        }
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return Reply(body=message)
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        events: list[dict[str, Any]] = [
            {"type": "message_start", "message": start},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "ping"},
        ]
        events += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}} for p in pieces
        ]
        events += [
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(pieces)},
            },
            {"type": "message_stop"},
        ]
        return Reply(frames=anthropic_frames(events))


def _error(status: int, message: str) -> Reply:
    return Reply(status=status, body=error_body(status, message))


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""
