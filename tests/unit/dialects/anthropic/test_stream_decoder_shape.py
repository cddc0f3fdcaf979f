"""StreamDecoder's learned delta shape (dialects/_text_shape.py): text, thinking and tool-argument deltas read
by the bytes around their string. It must never change what a stream decodes to."""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from apipod.dialects.anthropic import StreamDecoder
from apipod.domain.stream import StreamEvent, TextDelta, ToolCallDelta
from tests.fixture_path import fixture
from tests.unit.dialects.anthropic.sse import split_sse


class NeverLearns(StreamDecoder):
    """The decoder as it reads without the shape: every event parsed whole."""

    def _learn(self, data: bytes, payload: object, event: StreamEvent) -> None:  # type: ignore[override]
        return None


Event = tuple[str | None, bytes]


def event(payload: dict[str, object]) -> Event:
    return str(payload["type"]), orjson.dumps(payload)


def decoded(decoder: StreamDecoder, events: list[Event]) -> list[StreamEvent]:
    out: list[StreamEvent] = []
    for name, data in events:
        out.extend(decoder.feed(name, data))
    return out + decoder.close()


def both(events: list[Event]) -> tuple[list[StreamEvent], list[StreamEvent]]:
    return decoded(StreamDecoder(), events), decoded(NeverLearns(), events)


START = event({"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {"input_tokens": 3}}})
TEXT_BLOCK = event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
TOOL_BLOCK = event(
    {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t", "name": "f"}}
)
THINKING_BLOCK = event({"type": "content_block_start", "index": 2, "content_block": {"type": "thinking"}})
PING = ("ping", b'{"type": "ping"}')


def stop(index: int) -> Event:
    return event({"type": "content_block_stop", "index": index})


def delta(index: int, kind: str, field: str, middle: bytes) -> Event:
    head = b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":' % (
        index,
        kind.encode(),
        field.encode(),
    )
    return "content_block_delta", head + middle + b"}}"


def text(middle: bytes, index: int = 0) -> Event:
    return delta(index, "text_delta", "text", middle)


def test_text_deltas_after_the_first_are_read_by_their_shape() -> None:
    decoder = StreamDecoder()
    for name, data in (START, TEXT_BLOCK, text(b'"He"')):
        decoder.feed(name, data)
    assert decoder._shape is not None
    assert decoder.feed(*text(b'"llo \\"q\\" \\u00e9"')) == [TextDelta('llo "q" é')]
    assert decoder.feed(*text(b'""')) == []


def test_tool_argument_deltas_keep_their_call() -> None:
    events = [START, TOOL_BLOCK] + [delta(1, "input_json_delta", "partial_json", orjson.dumps(p)) for p in '{"a":1}']
    learned, whole = both(events)
    assert learned == whole
    assert [e for e in learned if isinstance(e, ToolCallDelta)] == [ToolCallDelta(0, p) for p in '{"a":1}']


def test_a_delta_after_its_block_stopped_means_what_it_means_parsed_whole() -> None:
    learned, whole = both([START, TEXT_BLOCK, text(b'"a"'), text(b'"b"'), stop(0), text(b'"after"')])
    assert learned == whole
    assert "after" not in [e.text for e in learned if isinstance(e, TextDelta)]


def test_a_repeated_key_keeps_the_decoder_from_learning() -> None:
    # the parser reads the last "text", not the one the marker points at: the probe sees it
    repeated = (
        "content_block_delta",
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"a","text":"a"}}',
    )
    decoder = StreamDecoder()
    for name, data in (START, TEXT_BLOCK, repeated):
        decoder.feed(name, data)
    assert decoder._shape is None
    other = "content_block_delta", repeated[1].replace(b'"text":"a",', b'"text":"zzz",')
    assert decoder.feed(*other) == [TextDelta("a")]


def test_a_delta_typed_only_by_its_event_name_is_not_learned() -> None:
    untyped = b'{"index":0,"delta":{"type":"text_delta","text":"a"}}'
    events = [START, TEXT_BLOCK, ("content_block_delta", untyped), ("content_block_delta", untyped), ("ping", untyped)]
    learned, whole = both(events)
    assert learned == whole
    assert [e for e in learned if isinstance(e, TextDelta)] == [TextDelta("a"), TextDelta("a")]


def test_recorded_streams_decode_the_same() -> None:
    for name in ("stream_text.sse", "stream_text_then_tool_use.sse", "stream_thinking_then_text.sse"):
        events = split_sse(fixture(f"anthropic/{name}").read_bytes())
        learned, whole = both(events)
        assert learned == whole


MIDDLES = st.one_of(
    st.text().map(orjson.dumps),
    st.text().map(lambda value: json.dumps(value).encode()),
    st.sampled_from([b'"a","text":"b"', b'"a" ', b"1", b"null", b'"a"}', b'"', b'"\\"', b"[]", b'"a","b"']),
)
DELTAS = st.one_of(
    st.builds(text, MIDDLES),
    st.builds(text, MIDDLES, st.sampled_from([1, 2, 5])),
    st.builds(lambda middle: delta(1, "input_json_delta", "partial_json", middle), MIDDLES),
    st.builds(lambda middle: delta(2, "thinking_delta", "thinking", middle), MIDDLES),
)
OTHERS = st.sampled_from([TEXT_BLOCK, TOOL_BLOCK, THINKING_BLOCK, PING, stop(0), stop(1), stop(2)])


@given(st.lists(st.one_of(DELTAS, DELTAS, OTHERS), max_size=16))
def test_any_stream_decodes_as_it_does_without_the_shape(events: list[Event]) -> None:
    learned, whole = both([START, TEXT_BLOCK, TOOL_BLOCK, THINKING_BLOCK, text(b'"learn"'), *events])
    assert learned == whole
