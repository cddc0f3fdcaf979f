"""Every codec fed hostile input: a client decoder answers a valid canonical request or a clean
``InvalidRequestError``; an upstream decoder answers a valid canonical result (or events) or a clean
``UpstreamError`` / ``StreamFailed``. Nothing else may escape (TypeError, KeyError, AttributeError,
RecursionError, OverflowError...): over HTTP that would be a 500 with the client's body in a traceback.

"Valid canonical" is checked structurally (tests/property/canonical_check.py) and by handing the decoded
value to every encoder of the other side, which must accept it too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apipod.dialects import anthropic, gemini, openai
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.errors import InvalidRequestError, UpstreamError
from apipod.domain.stream import StreamEvent, StreamFailed
from tests.property.canonical_check import assert_canonical
from tests.property.strategies import JSON, WILD_SCALARS, anthropic_body, openai_body, perturbed

_N = int(os.environ.get("APIPOD_PROPERTY_EXAMPLES", "200"))
FUZZ = settings(max_examples=_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIGHT = settings(max_examples=max(_N // 2, 1), deadline=None, suppress_health_check=[HealthCheck.too_slow])

RequestDecoder = Callable[[Any], ChatRequest]
REQUEST_DECODERS: dict[str, RequestDecoder] = {
    "openai": openai.decode_request,
    "anthropic": anthropic.decode_request,
    "anthropic-count-tokens": anthropic.decode_count_tokens_request,
}
VALID_BODIES = {
    "openai": openai_body(),
    "anthropic": anthropic_body(),
    "anthropic-count-tokens": anthropic_body(max_tokens=False),
}


def _ids() -> str:
    return "call_fixed"


def _reencode_request(request: ChatRequest, *, passthrough: bool = True) -> None:
    """A valid canonical request is one every upstream encoder can send, as JSON. ``passthrough=False``
    rebuilds a same-dialect body from the canonical fields instead of passing the client's body on."""
    if not passthrough:
        request = attrs.evolve(request, raw=None, dialect="")
    for body in (
        openai.encode_request(request, model="m", stream=request.stream),
        anthropic.encode_request(request, model="m", stream=request.stream),
        gemini.encode_request(request, model="gemini-3-pro", stream=False, call_ids=True),
    ):
        orjson.dumps(body)


def _check_request(decoder: RequestDecoder, body: Any, *, passthrough: bool = True) -> None:
    try:
        request = decoder(body)
    except InvalidRequestError as error:
        refusal = error.message
    else:
        assert_canonical(request)
        _reencode_request(request, passthrough=passthrough)
        return
    assert refusal, "a refusal says what is wrong"


@pytest.mark.parametrize("name", sorted(REQUEST_DECODERS))
@FUZZ
@given(body=JSON)
def test_client_decoders_take_any_json_value(name: str, body: Any) -> None:
    _check_request(REQUEST_DECODERS[name], body)


@pytest.mark.parametrize("name", sorted(REQUEST_DECODERS))
@FUZZ
@given(data=st.data())
def test_client_decoders_take_nearly_valid_bodies(name: str, data: st.DataObject) -> None:
    _check_request(REQUEST_DECODERS[name], data.draw(perturbed(VALID_BODIES[name])))


@pytest.mark.parametrize("name", sorted(REQUEST_DECODERS))
@LIGHT
@given(data=st.data())
def test_client_decoders_accept_valid_bodies(name: str, data: st.DataObject) -> None:
    """The generators above really produce valid bodies, so the perturbations start from valid ground."""
    request = REQUEST_DECODERS[name](data.draw(VALID_BODIES[name]))
    assert_canonical(request)
    _reencode_request(request)


SCALAR_FIELDS = {
    "openai": ("max_tokens", "max_completion_tokens", "n", "temperature", "top_p", "stream", "parallel_tool_calls"),
    "anthropic": ("max_tokens", "temperature", "top_p", "top_k", "stream"),
    "anthropic-count-tokens": ("max_tokens", "temperature", "top_p", "top_k", "stream"),
}


@pytest.mark.parametrize("name", sorted(REQUEST_DECODERS))
@FUZZ
@given(data=st.data(), value=WILD_SCALARS)
@example(data=None, value=2**1100)  # float() of it raised OverflowError
@example(data=None, value=float("nan"))  # was accepted as a temperature
@example(data=None, value=2**70)  # was accepted as top_k, then orjson could not send it on
def test_scalar_fields_take_numbers_no_parser_yields(name: str, data: st.DataObject | None, value: Any) -> None:
    """Integers past 64 bits or float range, NaN and infinities in the fields a codec reads itself. (The
    client's body passes through to a same-dialect upstream untouched: only the canonical fields are
    re-encoded here, since no JSON parser hands such integers to the codec.)"""
    body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    fields = SCALAR_FIELDS[name]
    for field in fields if data is None else (data.draw(st.sampled_from(fields)),):
        _check_request(REQUEST_DECODERS[name], {**body, field: value}, passthrough=False)
    thinking = {"type": "enabled", "budget_tokens": value}
    if name.startswith("anthropic"):
        _check_request(REQUEST_DECODERS[name], {**body, "thinking": thinking}, passthrough=False)


# -- upstream answers ----------------------------------------------------------------------------------------------

ResponseDecoder = Callable[[Any], ChatResult]
RESPONSE_DECODERS: dict[str, ResponseDecoder] = {
    "openai": openai.decode_response,
    "anthropic": anthropic.decode_response,
    "gemini": lambda body: gemini.decode_response(body, ids=_ids, names={"f_1": "f.1"}),
}

OPENAI_RESPONSE = st.fixed_dictionaries(
    {
        "id": st.just("chatcmpl-1"),
        "model": st.just("gpt"),
        "choices": st.just(
            [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "hi",
                        "reasoning_content": "hmm",
                        "reasoning_opaque": "op",
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        ),
        "usage": st.just(
            {
                "prompt_tokens": 3,
                "completion_tokens": 4,
                "prompt_tokens_details": {"cached_tokens": 1},
                "completion_tokens_details": {"reasoning_tokens": 2},
            }
        ),
    }
)
ANTHROPIC_RESPONSE = st.just(
    {
        "id": "msg_1",
        "type": "message",
        "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "redacted_thinking", "data": "d"},
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 3,
            "output_tokens": 4,
            "cache_read_input_tokens": 1,
            "cache_creation_input_tokens": 2,
            "output_tokens_details": {"thinking_tokens": 1},
        },
    }
)
GEMINI_RESPONSE = st.just(
    {
        "responseId": "r1",
        "modelVersion": "gemini-3-pro",
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "hmm", "thought": True, "thoughtSignature": "s1"},
                        {"text": "hi", "thoughtSignature": "s2"},
                        {"functionCall": {"name": "f_1", "args": {"a": 1}, "id": "x"}, "thoughtSignature": "s3"},
                        {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "promptFeedback": {"blockReason": "SAFETY"},
        "usageMetadata": {
            "promptTokenCount": 3,
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 2,
            "cachedContentTokenCount": 1,
            "toolUsePromptTokenCount": 1,
        },
    }
)
VALID_RESPONSES = {"openai": OPENAI_RESPONSE, "anthropic": ANTHROPIC_RESPONSE, "gemini": GEMINI_RESPONSE}


def _reencode_result(result: ChatResult) -> None:
    orjson.dumps(openai.encode_response(result, model="m", created=0))
    orjson.dumps(anthropic.encode_response(result, model="m"))


def _check_response(decoder: ResponseDecoder, body: Any) -> None:
    try:
        result = decoder(body)
    except UpstreamError as error:
        refusal = error.message
    else:
        assert_canonical(result)
        _reencode_result(result)
        return
    assert refusal, "an upstream error says what is wrong"


# Found by the properties below (each raised, or produced a non-canonical value, before the fix):
_MAX64 = 2**64 - 1
RESPONSE_REGRESSIONS = [
    {"usageMetadata": {"promptTokenCount": "3", "candidatesTokenCount": 1}},  # gemini: str + int
    {"candidates": [{"content": {"parts": [{"functionCall": True}]}}]},  # gemini: True.get
    {"responseId": True, "modelVersion": 5, "candidates": [{"finishReason": ["STOP"]}]},  # gemini: id True
    {"candidates": [{"content": {"parts": [{"text": True, "thought": True}, {"text": 7}]}}]},  # text True
    {"usageMetadata": {"promptTokenCount": _MAX64, "toolUsePromptTokenCount": _MAX64}},  # past 64 bits
    {"usage": {"prompt_tokens": _MAX64, "completion_tokens": _MAX64}, "choices": [{"message": {}}]},  # openai total
    {"usage": {"input_tokens": _MAX64, "cache_read_input_tokens": _MAX64}, "content": []},  # anthropic input
]


@pytest.mark.parametrize("name", sorted(RESPONSE_DECODERS))
@FUZZ
@given(body=JSON)
@example(body=RESPONSE_REGRESSIONS[0])
@example(body=RESPONSE_REGRESSIONS[1])
@example(body=RESPONSE_REGRESSIONS[2])
@example(body=RESPONSE_REGRESSIONS[3])
@example(body=RESPONSE_REGRESSIONS[4])
@example(body=RESPONSE_REGRESSIONS[5])
@example(body=RESPONSE_REGRESSIONS[6])
def test_response_decoders_take_any_json_value(name: str, body: Any) -> None:
    if not isinstance(body, Mapping):
        body = {"choices": body, "content": body, "candidates": body}
    _check_response(RESPONSE_DECODERS[name], body)


@pytest.mark.parametrize("name", sorted(RESPONSE_DECODERS))
@FUZZ
@given(data=st.data())
def test_response_decoders_take_nearly_valid_bodies(name: str, data: st.DataObject) -> None:
    _check_response(RESPONSE_DECODERS[name], data.draw(perturbed(VALID_RESPONSES[name])))


# -- upstream streams ----------------------------------------------------------------------------------------------

OPENAI_CHUNKS = [
    {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]},
    {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm", "reasoning_opaque": "op", "refusal": "no"}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "t", "function": {"name": "f"}}]}}]},
    {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}]},
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "prompt_tokens_details": {}}},
    {"error": {"type": "overloaded_error", "code": 529, "message": "busy"}},
]
ANTHROPIC_EVENTS = [
    {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 3}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
    {"type": "content_block_start", "index": 2, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
    {"type": "content_block_delta", "index": 2, "delta": {"type": "signature_delta", "signature": "s"}},
    {"type": "content_block_start", "index": 3, "content_block": {"type": "redacted_thinking", "data": "d"}},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
    {"type": "message_stop"},
    {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
]
GEMINI_CHUNKS = [
    {
        "responseId": "r",
        "modelVersion": "g",
        "candidates": [{"content": {"parts": [{"text": "hmm", "thought": True, "thoughtSignature": "s"}]}}],
    },
    {"candidates": [{"content": {"parts": [{"text": "hi", "thoughtSignature": "s2"}]}}]},
    {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f_1", "args": {"a": 1}}}]}}]},
    {"candidates": [{"finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2}},
    {"promptFeedback": {"blockReason": "SAFETY"}},
    {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota"}},
]
VALID_STREAM_PAYLOADS = {"openai": OPENAI_CHUNKS, "anthropic": ANTHROPIC_EVENTS, "gemini": GEMINI_CHUNKS}
STREAM_DECODERS: dict[str, Callable[[], Any]] = {
    "openai": openai.StreamDecoder,
    "anthropic": anthropic.StreamDecoder,
    "gemini": lambda: gemini.StreamDecoder(ids=_ids, names={"f_1": "f.1"}),
}


def _wire(value: Any) -> bytes:
    """A payload as an upstream could put it on the wire; the stdlib writes huge ints and NaN, orjson cannot."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value).encode()


EVENT_NAMES = st.none() | st.sampled_from(["ping", "message_start", "content_block_delta", "error", "message_stop"])
STREAM_ITEM = st.one_of(
    st.tuples(EVENT_NAMES, JSON.map(_wire)),
    st.tuples(EVENT_NAMES, st.binary(max_size=30)),
    st.tuples(EVENT_NAMES, st.sampled_from([b"[DONE]", b"", b" ", b"{", b"null", b"[]"])),
)


def _valid_stream_item(name: str) -> st.SearchStrategy[tuple[str | None, bytes]]:
    payloads = VALID_STREAM_PAYLOADS[name]
    valid = st.sampled_from(payloads)
    return st.tuples(EVENT_NAMES, (valid | perturbed(st.sampled_from(payloads))).map(_wire))


def _run_stream(name: str, items: list[tuple[str | None, bytes]]) -> list[StreamEvent]:
    decoder = STREAM_DECODERS[name]()
    events: list[StreamEvent] = []
    for event, data in items:
        events.extend(decoder.feed(event, data))
    events.extend(decoder.close())
    return events


def _check_stream(name: str, events: list[StreamEvent]) -> None:
    for event in events:
        assert_canonical(event)
    failures = [i for i, e in enumerate(events) if isinstance(e, StreamFailed)]
    if failures:
        assert failures == [len(events) - 1], "a StreamFailed ends the stream"
    # Every client encoder accepts the decoded events (nothing crashes on a value of the wrong shape).
    for encoder in (
        openai.StreamEncoder(model="m", message_id="chatcmpl-1", created=0),
        anthropic.StreamEncoder(model="m", message_id="msg_1"),
    ):
        for event in events:
            encoder.encode(event)


@pytest.mark.parametrize("name", sorted(STREAM_DECODERS))
@FUZZ
@given(items=st.lists(STREAM_ITEM, max_size=6))
@example(items=[(None, orjson.dumps(body)) for body in RESPONSE_REGRESSIONS])
@example(items=[(None, b'{"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": {"x": 1}}]}')])
def test_stream_decoders_take_any_payloads(name: str, items: list[tuple[str | None, bytes]]) -> None:
    _check_stream(name, _run_stream(name, items))


@pytest.mark.parametrize("name", sorted(STREAM_DECODERS))
@FUZZ
@given(data=st.data())
def test_stream_decoders_take_nearly_valid_payloads(name: str, data: st.DataObject) -> None:
    items = data.draw(st.lists(_valid_stream_item(name), min_size=1, max_size=8))
    _check_stream(name, _run_stream(name, items))


@LIGHT
@given(chunks=st.lists(JSON, max_size=4))
def test_gemini_feed_json_takes_any_parsed_value(chunks: list[Any]) -> None:
    """Antigravity hands already-parsed chunks to the Gemini decoder: huge ints and NaN included."""
    decoder = gemini.StreamDecoder(ids=_ids)
    events: list[StreamEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed_json(chunk))
    events.extend(decoder.close())
    _check_stream("gemini", events)


# -- upstream error answers ----------------------------------------------------------------------------------------

ERROR_DECODERS = {"openai": openai.decode_error, "anthropic": anthropic.decode_error, "gemini": gemini.decode_error}
HEADERS = st.dictionaries(
    st.sampled_from(["retry-after", "x-ratelimit-reset-requests", "anthropic-ratelimit-requests-reset", "x-other"]),
    st.text(max_size=30) | st.sampled_from(["1", "-1", "1e400", "nan", "Wed, 21 Oct 2015 07:28:00 GMT", "9" * 40]),
    max_size=3,
)


@pytest.mark.parametrize("name", sorted(ERROR_DECODERS))
@FUZZ
@given(status=st.integers(0, 999), body=JSON.map(_wire) | st.binary(max_size=40), headers=HEADERS)
def test_error_decoders_always_answer_an_upstream_error(
    name: str, status: int, body: bytes, headers: dict[str, str]
) -> None:
    error = ERROR_DECODERS[name](status, body, headers)
    assert isinstance(error, UpstreamError)
    assert error.message
    assert error.retry_after is None or error.retry_after >= 0


# -- Gemini's helpers over client-provided values ------------------------------------------------------------------

SCHEMA_WORDS = st.sampled_from(
    [
        *("type", "properties", "items", "anyOf", "oneOf", "allOf", "$ref", "$defs", "enum", "required", "format"),
        *("object", "string", "array", "integer", "null", "additionalProperties", "minLength", "default", "const"),
    ]
)
# JSON that looks like a schema often enough to reach the cleaner's deeper branches.
SCHEMA_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | SCHEMA_WORDS | st.text(max_size=4),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(SCHEMA_WORDS | st.text(max_size=4), children),
    max_leaves=30,
)


@FUZZ
@given(schema=st.dictionaries(SCHEMA_WORDS, SCHEMA_JSON, max_size=5) | st.dictionaries(st.text(max_size=5), JSON))
@example(schema={"allOf": [], "properties": 1})  # dict(1): TypeError in the allOf merge
@example(schema={"allOf": [], "properties": "type"})  # dict("type"): ValueError
@example(schema={"allOf": [{}], "required": 5})  # list(5): TypeError
def test_gemini_schema_cleaning_takes_any_client_schema(schema: dict[str, Any]) -> None:
    """A client's tool ``parameters`` reach ``clean_parameters`` unchecked when the route goes to Gemini."""
    cleaned = gemini.clean_parameters(schema)
    assert cleaned is None or isinstance(cleaned, dict)
    orjson.dumps(cleaned)


@FUZZ
@given(text=st.text() | JSON.map(lambda v: _wire(v).decode(errors="replace")).map(lambda t: t[: len(t) // 2 + 1]))
def test_gemini_arguments_parse_any_text(text: str) -> None:
    """Tool-call arguments (any text a model or client wrote, possibly cut off) become an object, never an error."""
    assert isinstance(gemini.parse_arguments(text), dict)


@FUZZ
@given(data=st.data())
def test_anthropic_token_count_takes_any_decoded_request(data: st.DataObject) -> None:
    body = data.draw(perturbed(anthropic_body(max_tokens=False)))
    try:
        request = anthropic.decode_count_tokens_request(body)
    except InvalidRequestError:
        return
    assert anthropic.count_tokens(request) >= 0
