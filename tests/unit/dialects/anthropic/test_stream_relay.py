"""The Anthropic same-dialect relay: the upstream's events pass as they came; the books read the same usage,
finish and failures as the decoder does on the re-encoding path."""

from __future__ import annotations

import orjson
import pytest

from apipod.adapters.upstreams._sse import SSEDecoder
from apipod.dialects.anthropic.stream_decoder import StreamDecoder
from apipod.dialects.anthropic.stream_encoder import StreamEncoder
from apipod.dialects.anthropic.stream_relay import StreamRelay
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    Relayed,
    StreamEvent,
    StreamFailed,
    UsageReported,
)
from tests.fixture_path import fixture

FIXTURES = ["stream_text.sse", "stream_text_then_tool_use.sse", "stream_thinking_then_text.sse"]


def relay_all(parts: list[bytes], model: str = "fast") -> list[StreamEvent]:
    relay = StreamRelay(model=model)
    events: list[StreamEvent] = []
    for part in parts:
        events += relay.feed(part)
    return events + relay.close()


def decoded(body: bytes) -> list[StreamEvent]:
    sse, decoder = SSEDecoder(), StreamDecoder()
    events = [e for name, data in sse.feed(body) for e in decoder.feed(name, data)]
    return events + [e for name, data in sse.close() for e in decoder.feed(name, data)] + decoder.close()


def relayed_bytes(events: list[StreamEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Relayed))


def books(events: list[StreamEvent]) -> list[StreamEvent]:
    return [e for e in events if isinstance(e, UsageReported | Finished | StreamFailed)]


def test_whatever_the_cut_message_started_comes_before_any_bytes() -> None:
    for name in [*FIXTURES, "stream_error_midstream.sse"]:
        body = fixture(f"anthropic/{name}").read_bytes().replace(b"\r\n", b"\n")
        for size in (1, 50, 400, len(body)):
            events = relay_all([body[i : i + size] for i in range(0, len(body), size)])
            kinds = [type(e) for e in events]
            assert kinds.index(MessageStarted) < kinds.index(Relayed), (name, size)


@pytest.mark.parametrize("name", FIXTURES)
def test_a_recorded_stream_passes_whole_and_the_books_match_the_decoder(name: str) -> None:
    body = fixture(f"anthropic/{name}").read_bytes().replace(b"\r\n", b"\n")
    model = orjson.loads(body.split(b"\n")[1][6:])["message"]["model"]

    events = relay_all([body])

    assert isinstance(events[0], MessageStarted) and events[0].relayed
    assert relayed_bytes(events) == body.replace(b'"model":' + orjson.dumps(model), b'"model":"fast"', 1)
    assert books(events) == books(decoded(body))
    assert isinstance(events[-1], Finished)


@pytest.mark.parametrize("size", [1, 13, 100, 4096])
def test_any_cut_of_the_body_gives_the_same_bytes_and_books(size: int) -> None:
    body = fixture("anthropic/stream_text_then_tool_use.sse").read_bytes().replace(b"\r\n", b"\n")

    events = relay_all([body[i : i + size] for i in range(0, len(body), size)])

    assert relayed_bytes(events) == relayed_bytes(relay_all([body]))
    assert books(events) == books(decoded(body))


def test_an_error_right_after_message_start_is_a_failure_before_anything_is_sent() -> None:
    start = fixture("anthropic/stream_text.sse").read_bytes().split(b"\n\n")[0] + b"\n\n"
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'

    events = relay_all([start, b'event: ping\ndata: {"type": "ping"}\n\n', error])

    assert not [e for e in events if isinstance(e, Relayed)]
    assert isinstance(events[-1], StreamFailed) and events[-1].kind == "overloaded"


def test_an_error_mid_stream_ends_it_after_what_came_before() -> None:
    body = fixture("anthropic/stream_error_midstream.sse").read_bytes().replace(b"\r\n", b"\n")

    events = relay_all([body])

    assert isinstance(events[0], MessageStarted)  # first: it puts the client's encoder in relay mode
    assert b"Sure, here is" in relayed_bytes(events)
    assert b"overloaded_error" not in relayed_bytes(events)  # apipod's encoder writes the error event
    assert isinstance(events[-1], StreamFailed)


def test_a_stream_cut_before_its_stop_reason_fails() -> None:
    body = fixture("anthropic/stream_text.sse").read_bytes().replace(b"\r\n", b"\n")
    cut = body[: body.index(b"event: message_delta")]

    events = relay_all([cut])

    assert isinstance(events[-1], StreamFailed)


def test_an_answer_without_content_still_goes_out() -> None:
    start = fixture("anthropic/stream_text.sse").read_bytes().split(b"\n\n")[0] + b"\n\n"
    end = (
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        b'"usage":{"output_tokens":0}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    )

    events = relay_all([start + end])

    assert relayed_bytes(events).count(b"event:") == 3
    assert isinstance(events[-1], Finished)


def test_the_encoder_writes_relayed_frames_and_only_its_own_errors() -> None:
    encoder = StreamEncoder(model="fast", message_id="msg_x")

    assert encoder.encode(MessageStarted(relayed=True)) == []
    assert encoder.ping() != []  # keep-alives may go out between relayed frames
    assert encoder.encode(Relayed(b"event: ping\ndata: {}\n\n")) == [b"event: ping\ndata: {}\n\n"]
    assert encoder.encode(Finished(books(decoded(fixture("anthropic/stream_text.sse").read_bytes()))[-1].reason)) == []
    failed = encoder.encode(StreamFailed("overloaded", "busy"))
    assert len(failed) == 1 and failed[0].startswith(b"event: error")


@pytest.mark.parametrize(
    "body", [b"<html>\n<body>Welcome!</body>\n</html>\n", b": hello\n\n: still thinking\n\n"], ids=["html", "comments"]
)
def test_what_is_not_an_answer_fails_before_anything_is_sent(body: bytes) -> None:
    events = relay_all([body])

    assert [type(e) for e in events] == [StreamFailed]
