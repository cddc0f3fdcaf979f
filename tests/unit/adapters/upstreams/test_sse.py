"""The SSE decoder: framing variants, comments, multi-line data, long lines, chunks split anywhere."""

from __future__ import annotations

import time

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apipod.adapters.upstreams._sse import SSEDecoder, SSEEvent, SSEEventTooLarge
from tests.fixture_path import fixture

FIXTURES = [
    "openai/chat_stream_text_include_usage.sse",
    "openai/chat_stream_parallel_tool_calls_include_usage.sse",
    "anthropic/stream_thinking_then_text.sse",
    "anthropic/stream_text_then_tool_use.sse",
    "gemini/stream_function_call_thought_signature.sse",  # \r\n framing
    "copilot/stream_usage_in_finish_chunk.sse",
]


def decode(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


def test_data_only_events_with_lf_framing() -> None:
    assert decode(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [(None, b'{"a":1}'), (None, b"[DONE]")]


def test_named_events_with_crlf_framing() -> None:
    raw = b'event: message_start\r\ndata: {"type":"message_start"}\r\n\r\nevent: ping\r\ndata: {"type":"ping"}\r\n\r\n'
    assert decode(raw) == [("message_start", b'{"type":"message_start"}'), ("ping", b'{"type":"ping"}')]


def test_lone_cr_line_endings() -> None:
    assert decode(b"event: a\rdata: 1\r\rdata: 2\r\r") == [("a", b"1"), (None, b"2")]


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    # "\r" ends one chunk and "\n" opens the next: one line end, not a line end plus a blank line.
    assert decode(b"data: x\r", b"\ndata: y\r", b"\n\r", b"\n") == [(None, b"x\ny")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode(b"data: first\ndata:second\ndata:  third\n\n") == [(None, b"first\nsecond\n third")]


def test_comments_ids_and_retry_are_ignored() -> None:
    raw = b": OPENROUTER PROCESSING\n\nid: 7\nretry: 100\n: keep-alive\ndata: x\n\n"
    assert decode(raw) == [(None, b"x")]


def test_event_without_data_is_not_dispatched_and_name_resets() -> None:
    assert decode(b"event: ping\n\ndata: x\n\n") == [(None, b"x")]


def test_field_without_colon_and_empty_data_line() -> None:
    assert decode(b"data\n\ndata:\n\n") == [(None, b""), (None, b"")]


def test_unterminated_last_event_is_dispatched_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.close() == [(None, b"[DONE]")]


def test_empty_chunks_are_harmless() -> None:
    assert decode(b"", b"data: a\n", b"", b"\n") == [(None, b"a")]


def test_ten_megabyte_line_in_small_chunks_is_linear() -> None:
    payload = b"x" * (10 * 1024 * 1024)
    raw = b"data: " + payload + b"\n\n"
    size = 4 * 1024
    chunks = [raw[i : i + size] for i in range(0, len(raw), size)]
    started = time.perf_counter()
    events = decode(*chunks)
    elapsed = time.perf_counter() - started
    assert events == [(None, payload)]
    assert elapsed < 0.5  # a quadratic rescan of 2560 chunks of a 10 MB line takes many seconds


@pytest.mark.parametrize("name", FIXTURES)
def test_every_split_point_of_a_fixture_gives_the_same_events(name: str) -> None:
    raw = fixture(name).read_bytes()
    whole = decode(raw)
    assert whole  # the fixture has events
    for cut in range(1, len(raw)):
        assert decode(raw[:cut], raw[cut:]) == whole, cut


@pytest.mark.parametrize("name", FIXTURES)
def test_byte_by_byte_feeding_gives_the_same_events(name: str) -> None:
    raw = fixture(name).read_bytes()
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == decode(raw)


def test_fixture_events_have_the_recorded_payloads() -> None:
    events = decode(fixture("anthropic/stream_text.sse").read_bytes())
    names = [name for name, _ in events]
    assert names[0] == "message_start"
    assert names[-1] == "message_stop"
    assert all(orjson.loads(data)["type"] == name for name, data in events)
    gemini = decode(fixture("gemini/stream_function_call_thought_signature.sse").read_bytes())
    assert all(name is None and data.startswith(b"{") and not data.endswith(b"\r") for name, data in gemini)


def spec_events(body: bytes) -> list[SSEEvent]:
    """The WHATWG event-stream rules applied to a whole body, line by line: the reference the incremental
    decoder (and its whole-event quick path) must agree with. As ``close()`` does, an event left without its
    blank line at the end is dispatched."""
    events: list[SSEEvent] = []
    name: str | None = None
    data: list[bytes] = []
    for line in [*body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"), b""]:
        if not line:
            if data:
                events.append((name, b"\n".join(data)))
            name, data = None, []
        elif line.startswith(b":"):
            continue
        else:
            field, colon, value = line.partition(b":")
            value = value[1:] if colon and value.startswith(b" ") else value
            if field == b"event":
                name = value.decode("utf-8", "replace")
            elif field == b"data":
                data.append(value)
    return events


_LINES = st.sampled_from(
    [b"data: {\"a\":1}", b"data:x", b"data: ", b"data", b"event: message_start", b"event:x", b": ping", b"",
     b"id: 7", b"retry: 10", b"data: two\nlines", b"event: ", b"event:  spaced: and colon", b"event: \xff"]
)  # fmt: skip


@given(
    lines=st.lists(_LINES, max_size=20),
    ending=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(0, 300), max_size=6),
)
def test_any_stream_cut_anywhere_decodes_as_the_spec_reads_it_whole(
    lines: list[bytes], ending: bytes, cuts: list[int]
) -> None:
    body = b"".join(line.replace(b"\n", ending) + ending for line in lines)
    expected = spec_events(body)
    for cut in range(len(body) + 1):  # in two at every point: an event's lines on both sides of a read
        assert decode(body[:cut], body[cut:]) == expected, cut
    points = sorted({min(cut, len(body)) for cut in cuts})
    chunks = [body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True)]
    assert decode(*chunks) == expected


def test_a_whole_event_over_the_cap_is_refused() -> None:
    for event in (b"data: " + b"x" * 101 + b"\n\n", b"event: big\ndata: " + b"y" * 101 + b"\n\n"):
        assert SSEDecoder(max_event_bytes=101).feed(event[:-3] + b"\n\n") != []  # 100 bytes of data: fits
        with pytest.raises(SSEEventTooLarge):
            SSEDecoder(max_event_bytes=100).feed(event)
