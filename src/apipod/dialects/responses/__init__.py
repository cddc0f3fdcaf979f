"""OpenAI's Responses API dialect (``POST /v1/responses``, the Codex CLI's wire): the client side (decode a
body, encode a Response object or its SSE stream, the history a ``previous_response_id`` continues) and the
upstream side (forward a Responses body to an upstream that serves the same API, read its answer). Pure codecs
over ``apipod.domain``: no I/O, no clock, no randomness. Reference: docs/protocols/openai-responses.md."""

from apipod.dialects.responses.history import continued, stored_items
from apipod.dialects.responses.request import decode_request
from apipod.dialects.responses.response import encode_response
from apipod.dialects.responses.stream_encoder import StreamEncoder

__all__ = [
    "StreamEncoder",
    "continued",
    "decode_request",
    "encode_response",
    "stored_items",
]
