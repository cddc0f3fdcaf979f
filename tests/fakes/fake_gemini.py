"""A scriptable fake of the Gemini API (Google AI Studio), speaking its exact wire format.

It is a plain ASGI app, so tests drive it through ``httpx.ASGITransport`` or serve it over a real socket
with ``serve_on_socket``. Replies are scripted in a queue (JSON answers, SSE streams framed
``data: ...\\r\\n\\r\\n`` as Gemini frames them, byte-exact fixture replays, errors such as the recorded 429);
with an empty queue it answers a short text. Every request is logged with its parsed body so tests can check
what apipod sent (thought signatures on the second turn, the key header, the URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import attrs
import orjson

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_METHOD = re.compile(r"^/v1beta/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$")


@attrs.define
class Reply:
    """One scripted answer. ``frames`` are SSE payloads (each sent as ``data: <payload>\\r\\n\\r\\n``);
    ``raw`` is sent byte for byte (fixture replays, a bare JSON error after the 200). ``cut_after`` drops
    the connection after that many frames."""

    status: int = 200
    body: Any = None
    frames: list[bytes] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    cut_after: int | None = None


@attrs.frozen
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any

    @property
    def model(self) -> str | None:
        match = _METHOD.match(self.path)
        return match["model"] if match else None


def text_response(text: str, *, model: str = "gemini-2.5-flash", prompt: int = 5, output: int = 3) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        },
        "modelVersion": model,
        "responseId": "fake-response-id",
    }


def error_body(code: int, status: str, message: str, details: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


class FakeGemini:
    """The fake server. ``keys`` (when given) are the API keys it accepts; ``models`` its model list."""

    def __init__(self, *, keys: Iterable[str] = (), models: Iterable[str] = ("gemini-2.5-flash",)) -> None:
        self.keys = set(keys)
        self.models = list(models)
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.page_size = 50

    # -- scripting ---------------------------------------------------------------------------------------
    def reply_json(self, body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self.replies.append(Reply(status=status, body=body, headers=dict(headers or {})))

    def reply_stream(self, chunks: Iterable[Any], *, delay: float = 0.0, cut_after: int | None = None) -> None:
        frames = [c if isinstance(c, bytes) else orjson.dumps(c) for c in chunks]
        self.replies.append(Reply(frames=frames, delay=delay, cut_after=cut_after))

    def reply_raw(self, raw: bytes, *, status: int = 200, content_type: str = "text/event-stream") -> None:
        self.replies.append(Reply(status=status, raw=raw, headers={"content-type": content_type}))

    def replay(self, fixture: Path, *, status: int | None = None, headers: Mapping[str, str] | None = None) -> None:
        """A recorded answer: ``.sse`` files stream byte for byte; ``.json`` files answer with their status
        (an error fixture's ``error.code``, else 200)."""
        data = fixture.read_bytes()
        if fixture.suffix == ".sse":
            self.reply_raw(data, status=status or 200)
            return
        body = orjson.loads(data)
        code = body.get("error", {}).get("code", 200) if isinstance(body, dict) else 200
        self.reply_json(body, status=status or code, headers=headers)

    def reply_error(self, code: int, status: str, message: str, *, details: list[Any] | None = None) -> None:
        self.reply_json(error_body(code, status, message, details), status=code)

    def signatures_sent(self, index: int = -1) -> list[str | None]:
        """The ``thoughtSignature`` of every functionCall part in one logged request, in order."""
        body = self.requests[index].body
        return [
            part.get("thoughtSignature")
            for content in body.get("contents", [])
            for part in content.get("parts", [])
            if "functionCall" in part
        ]

    # -- ASGI ----------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = parse_qs(scope.get("query_string", b"").decode())
        body: Any = None
        if raw:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = raw
        self.requests.append(Recorded(scope["method"], scope["path"], query, headers, body))
        await self._dispatch(scope["method"], scope["path"], query, headers, body, send)

    async def _dispatch(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any, send: Send
    ) -> None:
        key = headers.get("x-goog-api-key") or query.get("key", [""])[0]
        if not key:
            msg = "Method doesn't allow unregistered callers. Please use API Key or other form of API consumer."
            await _json(send, 403, error_body(403, "PERMISSION_DENIED", msg))
            return
        if self.keys and key not in self.keys:
            details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
            msg = "API key not valid. Please pass a valid API key."
            await _json(send, 400, error_body(400, "INVALID_ARGUMENT", msg, details))
            return
        if method == "GET" and path == "/v1beta/models":
            await _json(send, 200, self._models_page(query))
            return
        match = _METHOD.match(path)
        if method != "POST" or match is None:
            await _json(send, 404, error_body(404, "NOT_FOUND", f"Method not found: {method} {path}"))
            return
        if not isinstance(body, dict) or not body.get("contents"):
            await _json(
                send,
                400,
                error_body(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified"),
            )
            return
        streaming = match["method"] == "streamGenerateContent"
        reply = self.replies.popleft() if self.replies else self._default(match["model"], streaming)
        await self._send(reply, streaming and query.get("alt") == ["sse"], send)

    def _default(self, model: str, streaming: bool) -> Reply:
        if not streaming:
            return Reply(body=text_response("Hello from fake Gemini.", model=model))
        first = text_response("Hello", model=model)
        del first["candidates"][0]["finishReason"]
        return Reply(frames=[orjson.dumps(first), orjson.dumps(text_response(" from fake Gemini.", model=model))])

    def _models_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        size = int(query.get("pageSize", [str(self.page_size)])[0])
        start = int(query.get("pageToken", ["0"])[0] or 0)
        page = self.models[start : start + size]
        answer: dict[str, Any] = {
            "models": [
                {
                    "name": f"models/{name}",
                    "baseModelId": name,
                    "displayName": name,
                    "supportedGenerationMethods": ["embedContent"]
                    if "embedding" in name
                    else ["generateContent", "countTokens"],
                }
                for name in page
            ]
        }
        if start + size < len(self.models):
            answer["nextPageToken"] = str(start + size)
        return answer

    async def _send(self, reply: Reply, sse: bool, send: Send) -> None:
        if reply.frames is None:
            if reply.raw is not None:
                await _start(send, reply.status, reply.headers)
                await send({"type": "http.response.body", "body": reply.raw})
            else:
                await _json(send, reply.status, reply.body, reply.headers)
            return
        if not sse:  # without alt=sse Gemini streams one JSON array
            await _json(send, reply.status, [orjson.loads(f) for f in reply.frames])
            return
        await _start(send, reply.status, {"content-type": "text/event-stream", **reply.headers})
        for n, frame in enumerate(reply.frames):
            if reply.cut_after is not None and n >= reply.cut_after:
                raise ConnectionResetError("fake Gemini cut the stream")
            if reply.delay:
                await asyncio.sleep(reply.delay)
            await send({"type": "http.response.body", "body": b"data: " + frame + b"\r\n\r\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})


async def _start(send: Send, status: int, headers: Mapping[str, str]) -> None:
    pairs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})


async def _json(send: Send, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    await _start(send, status, {"content-type": "application/json; charset=UTF-8", **(headers or {})})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


@contextlib.asynccontextmanager
async def serve_on_socket(app: Callable[..., Awaitable[None]]) -> AsyncIterator[str]:
    """Serves ``app`` with uvicorn on 127.0.0.1 (a free port); yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
