"""The OpenAI Chat Completions dialect: both the client side (what apipod's ``/v1/chat/completions``
receives and answers) and the upstream side (what it sends to and reads from OpenAI-compatible
upstreams). Pure codecs over ``apipod.domain``: no I/O, no clock, no randomness."""

from apipod.dialects.openai.errors import decode_error, encode_error
from apipod.dialects.openai.models import encode_models
from apipod.dialects.openai.request import decode_request
from apipod.dialects.openai.response import decode_response, encode_response
from apipod.dialects.openai.stream_decoder import StreamDecoder
from apipod.dialects.openai.stream_encoder import StreamEncoder
from apipod.dialects.openai.upstream_request import encode_request

__all__ = [
    "StreamDecoder",
    "StreamEncoder",
    "decode_error",
    "decode_request",
    "decode_response",
    "encode_error",
    "encode_models",
    "encode_request",
    "encode_response",
]
