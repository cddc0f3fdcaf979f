"""The Gemini ``generateContent`` dialect, both ways.

Upstream side: apipod talks Gemini to Google AI Studio (and, inside its envelope, to Antigravity):
``encode_request``, ``decode_response``, ``StreamDecoder``, ``decode_error``.

Client side (the ``client_*`` modules): apipod serves Gemini-native clients (the Gemini CLI, the google-genai
SDKs) on ``/v1beta/models/{model}:generateContent | :streamGenerateContent | :countTokens``:
``decode_client_request``, ``encode_client_response``, ``ClientStreamEncoder``, ``encode_models``, ``error_body``.
"""

from __future__ import annotations

from apipod.dialects.gemini.arguments import parse_arguments
from apipod.dialects.gemini.client_count import count_tokens
from apipod.dialects.gemini.client_errors import error_body, status_name, stream_error_frame
from apipod.dialects.gemini.client_models import encode_model, encode_models
from apipod.dialects.gemini.client_request import decode_client_request, decode_count_tokens_request
from apipod.dialects.gemini.client_response import encode_client_response
from apipod.dialects.gemini.client_stream import ClientStreamEncoder
from apipod.dialects.gemini.contents import SKIP_SIGNATURE
from apipod.dialects.gemini.errors import decode_error, parse_duration, read_error
from apipod.dialects.gemini.names import tool_name_map
from apipod.dialects.gemini.request import encode_request
from apipod.dialects.gemini.response import IdFactory, decode_response, new_call_id, usage_from
from apipod.dialects.gemini.schema import clean_parameters, clean_schema
from apipod.dialects.gemini.stream import StreamDecoder

__all__ = [
    "SKIP_SIGNATURE",
    "ClientStreamEncoder",
    "IdFactory",
    "StreamDecoder",
    "clean_parameters",
    "clean_schema",
    "count_tokens",
    "decode_client_request",
    "decode_count_tokens_request",
    "decode_error",
    "decode_response",
    "encode_client_response",
    "encode_model",
    "encode_models",
    "encode_request",
    "error_body",
    "new_call_id",
    "parse_arguments",
    "parse_duration",
    "read_error",
    "status_name",
    "stream_error_frame",
    "tool_name_map",
    "usage_from",
]
