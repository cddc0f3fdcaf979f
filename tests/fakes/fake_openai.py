"""A scriptable fake of an OpenAI-compatible server (docs/protocols/openai-chat.md): ``POST /v1/chat/completions`` and
``GET /v1/models``, with OpenAI's error shapes. Point an adapter at ``<base>/v1``.

Without a script it echoes the last user message (``"Echo: <text>"``) with usage, streaming word by word
(role chunk, content chunks, finish chunk, the usage chunk when ``stream_options.include_usage``, ``[DONE]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from tests.fakes.scripted import Recorded, Reply, ScriptedUpstream, sse_frames, sse_frames_from_fixture, words

__all__ = ["FakeOpenAI", "error_body", "openai_frames", "sse_frames", "sse_frames_from_fixture"]

CREATED = 1727346142


def error_body(message: str, *, kind: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def openai_frames(chunks: Iterable[Any], *, done: bool = True) -> list[bytes]:
    """``data: <json>\\n\\n`` frames (bytes are sent as the payload unchanged), then ``data: [DONE]``."""
    frames = [b"data: " + (c if isinstance(c, bytes) else orjson.dumps(c)) + b"\n\n" for c in chunks]
    if done:
        frames.append(b"data: [DONE]\n\n")
    return frames


class FakeOpenAI(ScriptedUpstream):
    """``keys``: the API keys accepted (any bearer token when empty). ``models``: what ``/v1/models`` lists."""

    def __init__(self, *, keys: Iterable[str] = (), models: Iterable[str] = ("gpt-4o-mini", "gpt-4o")) -> None:
        super().__init__(keys=keys, models=models)

    def reply_error(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.reply_json(error_body(message, kind=kind, code=code), status=status, headers=headers)

    def respond(self, request: Recorded) -> Reply:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if self.keys and auth.removeprefix("Bearer ") not in self.keys:
            return _error(401, "Incorrect API key provided.", code="invalid_api_key")
        if request.method == "GET" and request.path == "/v1/models":
            return self.scripted() or Reply(body=self._models())
        if request.method != "POST" or request.path != "/v1/chat/completions":
            return _error(404, f"Invalid URL ({request.method} {request.path})")
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body.get("model"):
            return _error(400, "you must provide a model parameter and a messages array")
        return self.scripted() or self._default(body)

    def _models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": CREATED, "owned_by": "system"} for m in self.models],
        }

    def _default(self, body: dict[str, Any]) -> Reply:
        text = "Echo: " + _last_user_text(body["messages"])
        model = str(body["model"])
        prompt = max(1, len(orjson.dumps(body["messages"])) // 4)
        pieces = words(text)
        usage = {"prompt_tokens": prompt, "completion_tokens": len(pieces), "total_tokens": prompt + len(pieces)}
        head = {"id": "chatcmpl-fake", "object": "chat.completion", "created": CREATED, "model": model}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text, "refusal": None}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
            return Reply(body={**head, "choices": [choice], "usage": usage})
        head["object"] = "chat.completion.chunk"

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        chunks = [chunk({"role": "assistant", "content": ""})]
        chunks += [chunk({"content": piece}) for piece in pieces]
        chunks.append(chunk({}, "stop"))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            chunks.append({**head, "choices": [], "usage": usage})
        return Reply(frames=openai_frames(chunks))


def _error(status: int, message: str, *, code: str | None = None) -> Reply:
    return Reply(status=status, body=error_body(message, code=code))


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""
