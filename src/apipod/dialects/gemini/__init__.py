"""The Gemini ``generateContent`` dialect, upstream side only: apipod talks Gemini to Google AI Studio (and,
inside its envelope, to Antigravity) but serves no Gemini-speaking clients."""

from __future__ import annotations

from apipod.dialects.gemini.arguments import parse_arguments
from apipod.dialects.gemini.contents import SKIP_SIGNATURE
from apipod.dialects.gemini.errors import decode_error, parse_duration, read_error
from apipod.dialects.gemini.names import tool_name_map
from apipod.dialects.gemini.request import encode_request
from apipod.dialects.gemini.response import IdFactory, decode_response, new_call_id, usage_from
from apipod.dialects.gemini.schema import clean_parameters, clean_schema
from apipod.dialects.gemini.stream import StreamDecoder

__all__ = [
    "SKIP_SIGNATURE",
    "IdFactory",
    "StreamDecoder",
    "clean_parameters",
    "clean_schema",
    "decode_error",
    "decode_response",
    "encode_request",
    "new_call_id",
    "parse_arguments",
    "parse_duration",
    "read_error",
    "tool_name_map",
    "usage_from",
]
