"""StreamDecoder's learned text-chunk shape: the bytes around a text chunk's text, learned from one chunk and
used to read the next ones without parsing them whole. It must never change what a stream decodes to."""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from apipod.dialects.openai import StreamDecoder
from apipod.domain.stream import StreamEvent, TextDelta
from tests.fixture_path import fixture
from tests.unit.dialects.openai.sse import split_sse


class NeverLearns(StreamDecoder):
    """The decoder as it reads without the shape: every chunk parsed whole."""

    __slots__ = ()

    def _learn(self, data: bytes, text: str) -> None:
        return None


HEAD = b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":'
TAIL = b'},"finish_reason":null}]}'


def text_chunk(middle: bytes) -> bytes:
    """A text chunk in OpenAI's own byte layout, with ``middle`` where the text's JSON string goes."""
    return HEAD + middle + TAIL


def decoded(decoder: StreamDecoder, chunks: list[bytes]) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for data in chunks:
        events.extend(decoder.feed(None, data))
    return events + decoder.close()


def both(chunks: list[bytes]) -> tuple[list[StreamEvent], list[StreamEvent]]:
    return decoded(StreamDecoder(), chunks), decoded(NeverLearns(), chunks)


ROLE = orjson.dumps(
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
    }
)
FINISH = b'{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'  # noqa: E501


def test_text_chunks_after_the_first_are_read_by_their_shape() -> None:
    decoder = StreamDecoder()
    decoder.feed(None, ROLE)
    assert decoder.feed(None, text_chunk(b'"Hel"')) == [TextDelta("Hel")]
    assert decoder._shape == (HEAD, TAIL, len(HEAD), len(TAIL))  # the next text chunks take the short way
    assert decoder.feed(None, text_chunk(b'"lo \\"quoted\\" \\\\ \\u00e9\\n"')) == [TextDelta('lo "quoted" \\ é\n')]
    assert decoder.feed(None, text_chunk(b'""')) == []


def test_a_chunk_that_only_looks_like_text_is_parsed_whole() -> None:
    chunks = [
        ROLE,
        text_chunk(b'"a"'),
        text_chunk(b'"b","refusal":"no"'),  # two strings between head and tail: a refusal as well
        text_chunk(b'"c\\""'),
        text_chunk(b"null"),
        text_chunk(b"1"),
        text_chunk(b'"d"').replace(b'"finish_reason":null', b'"finish_reason":"stop"'),
        FINISH,
    ]
    learned, whole = both(chunks)
    assert learned == whole
    assert [e.text for e in learned if isinstance(e, TextDelta)] == ["a", "b", "no", 'c"', "d"]


def test_a_chunk_cut_inside_its_text_fails_the_stream_as_a_whole_parse_does() -> None:
    learned, whole = both([ROLE, text_chunk(b'"a"'), text_chunk(b'"unfinished'), FINISH])
    assert learned == whole
    assert learned[-1].message == "The upstream sent a malformed stream chunk."  # type: ignore[union-attr]


def test_no_shape_is_learned_from_spaced_json_or_a_delta_with_more_than_text() -> None:
    decoder = StreamDecoder()
    decoder.feed(None, ROLE)
    spaced = json.dumps(orjson.loads(text_chunk(b'"x"'))).encode()
    assert decoder.feed(None, spaced) == [TextDelta("x")]
    assert decoder._shape is None
    with_role = HEAD[: -len(b'{"content":')] + b'{"content":"y","role":"assistant"' + TAIL
    assert decoder.feed(None, with_role) == [TextDelta("y")]
    assert decoder._shape is None


def test_a_repeated_key_keeps_the_decoder_from_learning() -> None:
    # the parser reads the second "choices" (written with a space, so the marker is there once): the probe sees it
    repeated = text_chunk(b'"a"')[:-1] + b',"choices":[{"index":0,"delta": {"content":"a"},"finish_reason":null}]}'
    decoder = StreamDecoder()
    decoder.feed(None, ROLE)
    assert decoder.feed(None, repeated) == [TextDelta("a")]
    assert decoder._shape is None
    learned, whole = both([ROLE, repeated, repeated.replace(b'{"content":"a"}', b'{"content":"zzz"}', 1)])
    assert learned == whole


def test_recorded_streams_decode_the_same() -> None:
    for name in (
        "openai/chat_stream_text_include_usage.sse",
        "openai/chat_stream_parallel_tool_calls_include_usage.sse",
    ):
        chunks = [data for _, data in split_sse(fixture(name).read_bytes())]
        learned, whole = both(chunks)
        assert learned == whole


MIDDLES = st.one_of(
    st.text().map(orjson.dumps),
    st.text().map(lambda text: json.dumps(text).encode()),  # \\uXXXX escapes
    st.sampled_from(
        [b'"a","role":"x"', b'"a" ', b' "a"', b"1", b"null", b'"a"}', b'"', b'"\\"', b'"a\\\\"', b"[]", b'"a","b"']
    ),
)
OTHER_CHUNKS = st.sampled_from(
    [
        ROLE,
        FINISH,
        b'{"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"z"},"finish_reason":null}]}',
        b'{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{}"}}]},"finish_reason":null}]}',
        b'{"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}',
        b"[DONE]",
    ]
)


@given(st.lists(st.one_of(MIDDLES.map(text_chunk), OTHER_CHUNKS), max_size=12))
def test_any_stream_decodes_as_it_does_without_the_shape(chunks: list[bytes]) -> None:
    learned, whole = both([ROLE, text_chunk(b'"learn"'), *chunks])  # the shape is learned from the second
    assert learned == whole
