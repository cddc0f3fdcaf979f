"""The Anthropic Messages dialect: client-side and upstream-side codecs (docs/protocols/anthropic-messages.md).

Imports apipod.domain, the stdlib and orjson only.
"""

from __future__ import annotations

from apipod.dialects.anthropic.count_tokens import count_tokens
from apipod.dialects.anthropic.errors import decode_error, encode_error
from apipod.dialects.anthropic.models import encode_models
from apipod.dialects.anthropic.request import decode_count_tokens_request, decode_request
from apipod.dialects.anthropic.response import decode_response, encode_response
from apipod.dialects.anthropic.stream_decoder import StreamDecoder
from apipod.dialects.anthropic.stream_encoder import PING_FRAME, StreamEncoder
from apipod.dialects.anthropic.upstream_request import DEFAULT_MAX_TOKENS, encode_request

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "PING_FRAME",
    "StreamDecoder",
    "StreamEncoder",
    "count_tokens",
    "decode_count_tokens_request",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_models",
    "encode_request",
    "encode_response",
]
