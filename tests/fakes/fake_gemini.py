"""A scriptable fake of the Gemini API (Google AI Studio, docs/protocols/gemini.md): ``POST /v1beta/models/{model}:
generateContent``, ``:streamGenerateContent`` (SSE with ``alt=sse``, one JSON array without) and
``GET /v1beta/models`` (paged), with Google's error shapes. Point an adapter at the bare host.

Scripting, logging and serving come from ``tests.fakes.scripted`` like the other fakes. Gemini specifics:
frames are ``data: <json>\\r\\n\\r\\n`` as Gemini sends them; the key is checked in ``x-goog-api-key`` (or
``?key=``): missing is 403 ``PERMISSION_DENIED``, unknown is 400 ``API_KEY_INVALID``. Without a script it
echoes the last user text (``"Echo: <text>"``) with usage, streaming word by word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from tests.fakes.scripted import Recorded, Reply, ScriptedUpstream, sse_frames, sse_frames_from_fixture, words

__all__ = [
    "FakeGemini",
    "error_body",
    "gemini_frames",
    "sse_frames",
    "sse_frames_from_fixture",
    "text_chunk",
    "text_response",
]

_METHOD = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")
_RPC = "type.googleapis.com/google.rpc."


def error_body(code: int, status: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def text_chunk(
    text: str, *, finish: str | None = None, model: str = "gemini-2.5-flash", **usage: int
) -> dict[str, Any]:
    """One ``GenerateContentResponse`` holding one text part; ``usage`` as usageMetadata fields
    (``promptTokenCount=5``...)."""
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": "fake-response-id"}
    if usage:
        body["usageMetadata"] = {**usage, "totalTokenCount": sum(usage.values())}
    return body


def text_response(text: str, *, model: str = "gemini-2.5-flash", prompt: int = 5, output: int = 3) -> dict[str, Any]:
    return text_chunk(text, finish="STOP", model=model, promptTokenCount=prompt, candidatesTokenCount=output)


def gemini_frames(chunks: Iterable[Any]) -> list[bytes]:
    """``data: <json>\\r\\n\\r\\n`` frames (bytes are sent as the payload unchanged). No ``[DONE]``."""
    return [b"data: " + (c if isinstance(c, bytes) else orjson.dumps(c)) + b"\r\n\r\n" for c in chunks]


class FakeGemini(ScriptedUpstream):
    """``keys``: the API keys accepted (any key when empty). ``models``: what ``/v1beta/models`` lists;
    ``page_size`` caps a page whatever ``pageSize`` asks, to exercise paging."""

    def __init__(
        self, *, keys: Iterable[str] = (), models: Iterable[str] = ("gemini-2.5-flash", "gemini-2.5-pro")
    ) -> None:
        super().__init__(keys=keys, models=models)
        self.page_size = 50

    # -- scripting -------------------------------------------------------------------------------------------
    def reply_stream(self, chunks: Iterable[Any], *, delay: float = 0.0, cut_after: int | None = None) -> None:
        self.reply_sse(gemini_frames(chunks), delay=delay, cut_after=cut_after)

    def reply_error(self, code: int, status: str, message: str, *, details: list[Any] | None = None) -> None:
        self.reply_json(error_body(code, status, message, details), status=code)

    def reply_rate_limited(self, retry_delay: str = "34.4s", *, quota_id: str = "GenerateRequestsPerMinute") -> None:
        details = [
            {"@type": _RPC + "QuotaFailure", "violations": [{"quotaId": quota_id}]},
            {"@type": _RPC + "RetryInfo", "retryDelay": retry_delay},
        ]
        self.reply_error(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", details=details)

    # -- assertions ------------------------------------------------------------------------------------------
    def signatures_sent(self, index: int = -1) -> list[str | None]:
        """The ``thoughtSignature`` of every functionCall part of one logged request, in order."""
        body = self.requests[index].body
        return [
            part.get("thoughtSignature")
            for content in body.get("contents", [])
            for part in content.get("parts", [])
            if "functionCall" in part
        ]

    # -- routing ---------------------------------------------------------------------------------------------
    def respond(self, request: Recorded) -> Reply:
        key = request.headers.get("x-goog-api-key") or request.query.get("key", [""])[0]
        if not key:
            message = "Method doesn't allow unregistered callers (callers without established identity)."
            return Reply(status=403, body=error_body(403, "PERMISSION_DENIED", message))
        if self.keys and key not in self.keys:
            details = [{"@type": _RPC + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
            message = "API key not valid. Please pass a valid API key."
            return Reply(status=400, body=error_body(400, "INVALID_ARGUMENT", message, details))
        if request.method == "GET" and request.path == "/v1beta/models":
            return self.scripted() or Reply(body=self._models_page(request.query))
        match = _METHOD.match(request.path)
        if request.method != "POST" or match is None:
            return Reply(status=404, body=error_body(404, "NOT_FOUND", f"Method not found: {request.path}"))
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
            message = "* GenerateContentRequest.contents: contents is not specified"
            return Reply(status=400, body=error_body(400, "INVALID_ARGUMENT", message))
        streaming = match["method"] == "streamGenerateContent"
        return self.scripted() or self._default(body, match["model"], streaming, request.query.get("alt") == ["sse"])

    def _default(self, body: dict[str, Any], model: str, streaming: bool, sse: bool) -> Reply:
        text = "Echo: " + _last_user_text(body["contents"])
        prompt = max(1, len(orjson.dumps(body["contents"])) // 4)
        pieces = words(text)
        if not streaming:
            return Reply(body=text_response(text, model=model, prompt=prompt, output=len(pieces)))
        chunks = [
            text_chunk(
                piece,
                finish="STOP" if n == len(pieces) else None,
                model=model,
                promptTokenCount=prompt,
                candidatesTokenCount=n,
            )
            for n, piece in enumerate(pieces, 1)
        ]
        return Reply(frames=gemini_frames(chunks)) if sse else Reply(body=chunks)

    def _models_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        size = min(int(query.get("pageSize", ["50"])[0]), self.page_size)
        start = int(query.get("pageToken", ["0"])[0] or 0)
        page = self.models[start : start + size]
        answer: dict[str, Any] = {
            "models": [
                {
                    "name": f"models/{name}",
                    "baseModelId": name,
                    "displayName": name,
                    "supportedGenerationMethods": (
                        ["embedContent"] if "embedding" in name else ["generateContent", "countTokens"]
                    ),
                }
                for name in page
            ]
        }
        if start + size < len(self.models):
            answer["nextPageToken"] = str(start + size)
        return answer


def _last_user_text(contents: list[Any]) -> str:
    for content in reversed(contents):
        if isinstance(content, dict) and content.get("role") == "user":
            texts = [p["text"] for p in content.get("parts", []) if isinstance(p, dict) and "text" in p]
            if texts:
                return "".join(texts)
    return ""
