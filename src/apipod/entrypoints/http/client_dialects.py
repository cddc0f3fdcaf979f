"""The two client dialects as objects the chat resource can hold: decode, encode, stream-encode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from apipod.dialects import anthropic as anthropic_dialect
from apipod.dialects import openai as openai_dialect
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.entrypoints.http.errors import ANTHROPIC, OPENAI
from apipod.entrypoints.http.streaming import FrameEncoder


class ClientDialect(Protocol):
    name: str

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest: ...

    def encode(self, result: ChatResult, *, model: str, created: int) -> dict[str, Any]: ...

    def stream_encoder(self, body: dict[str, Any], *, model: str, message_id: str, created: int) -> FrameEncoder: ...


class OpenAIClients:
    name = OPENAI

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        return openai_dialect.decode_request(body, headers)

    def encode(self, result: ChatResult, *, model: str, created: int) -> dict[str, Any]:
        return openai_dialect.encode_response(result, model=model, created=created)

    def stream_encoder(self, body: dict[str, Any], *, model: str, message_id: str, created: int) -> FrameEncoder:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        return openai_dialect.StreamEncoder(
            model=model, message_id=f"chatcmpl-{message_id}", created=created, include_usage=include_usage
        )


class AnthropicClients:
    name = ANTHROPIC

    def decode(self, body: dict[str, Any], headers: Mapping[str, str]) -> ChatRequest:
        return anthropic_dialect.decode_request(body, headers)

    def encode(self, result: ChatResult, *, model: str, created: int) -> dict[str, Any]:
        return anthropic_dialect.encode_response(result, model=model)

    def stream_encoder(self, body: dict[str, Any], *, model: str, message_id: str, created: int) -> FrameEncoder:
        return anthropic_dialect.StreamEncoder(model=model, message_id=f"msg_{message_id}", created=created)
