"""The client dialects as objects the chat resources can hold: decode, encode, stream-encode, and how a stream
stays alive in that dialect. One object per dialect; Gemini's is made per call (its model and method are in
the URL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from apipod.dialects import anthropic as anthropic_dialect
from apipod.dialects import gemini as gemini_dialect
from apipod.dialects import openai as openai_dialect
from apipod.dialects import responses as responses_dialect
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.entrypoints.http.errors import ANTHROPIC, GEMINI, OPENAI, RESPONSES
from apipod.entrypoints.http.streaming import FrameEncoder

COMMENT_KEEPALIVE = b": keep-alive\n\n"
"""An SSE comment line: every SSE parser skips it."""


class ClientDialect(Protocol):
    name: str
    content_type: bytes  # of a streamed answer

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest: ...

    def encode(self, result: ChatResult, body: dict[str, Any], *, response_id: str, created: int) -> dict[str, Any]: ...

    def stream_encoder(
        self, body: dict[str, Any], *, model: str, response_id: str, created: int
    ) -> tuple[FrameEncoder, bytes | Callable[[], bytes]]:
        """The stream's encoder and its keep-alive: a frame, or a callable making the next one."""
        ...


class OpenAIClients:
    name = OPENAI
    content_type = b"text/event-stream"

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        return openai_dialect.decode_request(body, headers)

    def encode(self, result: ChatResult, body: dict[str, Any], *, response_id: str, created: int) -> dict[str, Any]:
        return openai_dialect.encode_response(result, model=result.model, created=created)

    def stream_encoder(
        self, body: dict[str, Any], *, model: str, response_id: str, created: int
    ) -> tuple[FrameEncoder, bytes | Callable[[], bytes]]:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        encoder = openai_dialect.StreamEncoder(
            model=model, message_id=f"chatcmpl-{response_id}", created=created, include_usage=include_usage
        )
        return encoder, COMMENT_KEEPALIVE


class AnthropicClients:
    name = ANTHROPIC
    content_type = b"text/event-stream"
    _PING = b'event: ping\ndata: {"type": "ping"}\n\n'  # Anthropic clients know a ``ping`` event

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        return anthropic_dialect.decode_request(body, headers)

    def encode(self, result: ChatResult, body: dict[str, Any], *, response_id: str, created: int) -> dict[str, Any]:
        return anthropic_dialect.encode_response(result, model=result.model)

    def stream_encoder(
        self, body: dict[str, Any], *, model: str, response_id: str, created: int
    ) -> tuple[FrameEncoder, bytes | Callable[[], bytes]]:
        encoder = anthropic_dialect.StreamEncoder(model=model, message_id=f"msg_{response_id}", created=created)
        return encoder, self._PING


class ResponsesClients:
    """OpenAI's Responses API. A keep-alive is a real ``response.in_progress`` event: the Codex CLI's idle
    timer ignores comment lines."""

    name = RESPONSES
    content_type = b"text/event-stream"

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        return responses_dialect.decode_request(body, headers)

    def encode(self, result: ChatResult, body: dict[str, Any], *, response_id: str, created: int) -> dict[str, Any]:
        return responses_dialect.encode_response(result, body, response_id=f"resp_{response_id}", created=created)

    def stream_encoder(
        self, body: dict[str, Any], *, model: str, response_id: str, created: int
    ) -> tuple[FrameEncoder, bytes | Callable[[], bytes]]:
        encoder = responses_dialect.StreamEncoder(body, model=model, response_id=f"resp_{response_id}", created=created)
        return encoder, encoder.keepalive


class GeminiCall:
    """Gemini's ``generateContent`` family for one call: the model and the method come from the URL.
    ``sse`` is ``?alt=sse``; without it a stream is one JSON array written piece by piece, between whose
    elements whitespace is the only safe keep-alive."""

    name = GEMINI

    def __init__(self, model: str, *, stream: bool, sse: bool) -> None:
        self._model = model
        self._stream = stream
        self._sse = sse
        self.content_type = b"text/event-stream" if sse else b"application/json"

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        return gemini_dialect.decode_client_request(body, model=self._model, stream=self._stream, headers=headers)

    def encode(self, result: ChatResult, body: dict[str, Any], *, response_id: str, created: int) -> dict[str, Any]:
        return gemini_dialect.encode_client_response(result, model=result.model, response_id=response_id)

    def stream_encoder(
        self, body: dict[str, Any], *, model: str, response_id: str, created: int
    ) -> tuple[FrameEncoder, bytes | Callable[[], bytes]]:
        encoder = gemini_dialect.ClientStreamEncoder(model=model, response_id=response_id, sse=self._sse)
        return encoder, b"\r\n"  # an empty line: the SDKs' SSE readers skip it, and JSON allows it
