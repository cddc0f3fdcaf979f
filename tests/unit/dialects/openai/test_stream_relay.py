"""The same-dialect relay: an OpenAI upstream's chunks pass as they came, and only the books are parsed."""

from __future__ import annotations

import orjson
import pytest

from apipod.dialects.openai.stream_encoder import StreamEncoder
from apipod.dialects.openai.stream_relay import DONE_FRAME, StreamRelay
from apipod.domain.chat import FinishReason, Usage
from apipod.domain.stream import Finished, MessageStarted, Relayed, StreamEvent, StreamFailed, UsageReported


def frame(payload: dict[str, object] | str, *, space: bool = False) -> bytes:
    data = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    return b"data: " + data + b"\n\n" if not space else b"data:" + data + b"\n\n"


def chunk(delta: dict[str, object], finish: str | None = None, **extra: object) -> dict[str, object]:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": None,
        **extra,
    }


USAGE = {
    "id": "chatcmpl-up",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [],
    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
}
STREAM = [
    frame(chunk({"role": "assistant", "content": ""})),
    *(frame(chunk({"content": f"tok{i} "})) for i in range(5)),
    frame(chunk({}, "stop")),
    frame(USAGE),
    b"data: [DONE]\n\n",
]


def relay_all(parts: list[bytes], *, include_usage: bool = True) -> list[StreamEvent]:
    relay = StreamRelay(model="fast", include_usage=include_usage)
    events: list[StreamEvent] = []
    for part in parts:
        events += relay.feed(part)
    return events + relay.close()


def relayed_bytes(events: list[StreamEvent]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Relayed))


def test_the_stream_passes_as_it_came_with_the_clients_model_name() -> None:
    events = relay_all(STREAM)

    assert events[0] == MessageStarted(id="chatcmpl-up", model="gpt-4o-mini-2024-07-18", relayed=True)
    out = relayed_bytes(events)
    assert out == b"".join(STREAM).replace(b'"model":"gpt-4o-mini-2024-07-18"', b'"model":"fast"')
    assert UsageReported(Usage(input_tokens=11, output_tokens=7)) in events
    assert events[-1] == Finished(FinishReason.END_TURN)


@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_any_cut_of_the_body_gives_the_same_bytes_and_whole_events_only(size: int) -> None:
    body = b"".join(STREAM)
    parts = [body[i : i + size] for i in range(0, len(body), size)]

    events = relay_all(parts)

    assert relayed_bytes(events) == relayed_bytes(relay_all(STREAM))
    for event in events:
        if isinstance(event, Relayed):
            assert event.data.endswith(b"\n\n")
    assert sum(e.events for e in events if isinstance(e, Relayed)) == 9


def test_the_usage_chunk_is_left_out_when_the_client_did_not_ask_for_it() -> None:
    events = relay_all(STREAM, include_usage=False)

    out = relayed_bytes(events)
    assert b'"prompt_tokens"' not in out
    assert out.endswith(b'"finish_reason":"stop"}],"usage":null}\n\ndata: [DONE]\n\n')
    assert UsageReported(Usage(input_tokens=11, output_tokens=7)) in events  # the books still have it


def test_usage_on_the_finish_chunk_is_kept_for_the_client() -> None:
    finish = chunk({}, "length")
    finish["usage"] = USAGE["usage"]
    events = relay_all([STREAM[0], frame(finish), b"data: [DONE]\n\n"], include_usage=False)

    assert b'"prompt_tokens":11' in relayed_bytes(events)
    assert events[-1] == Finished(FinishReason.MAX_TOKENS)


def test_a_stream_that_names_the_clients_model_passes_byte_for_byte() -> None:
    relay = StreamRelay(model="gpt-4o-mini-2024-07-18", include_usage=True)
    events = [event for part in STREAM for event in relay.feed(part)] + relay.close()

    assert relayed_bytes(events) == b"".join(STREAM)
    assert relay._learned
    assert relay._rewrite is None  # nothing to search for in the chunks that follow


def test_the_model_is_learned_once_and_rewritten_in_every_later_piece() -> None:
    relay = StreamRelay(model="fast", include_usage=True)
    events = [event for part in STREAM for event in relay.feed(part)] + relay.close()

    assert relay._rewrite == (b'"model":"gpt-4o-mini-2024-07-18"', b'"model":"fast"')
    assert b"gpt-4o-mini" not in relayed_bytes(events)


def test_a_spaced_model_field_is_rewritten_too() -> None:
    spaced = STREAM[0].replace(b'"model":"gpt', b'"model": "gpt')

    events = relay_all([spaced, spaced.replace(b'"content":""', b'"content":"x"')])

    assert relayed_bytes(events).count(b'"model": "fast"') == 2


def test_a_first_event_that_is_an_error_is_a_failure_before_anything_is_sent() -> None:
    error = {"error": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}

    events = relay_all([frame(error)])

    assert len(events) == 1
    assert isinstance(events[0], StreamFailed)


def test_an_error_after_the_start_ends_the_stream_after_what_came_before() -> None:
    error = frame({"error": {"message": "boom", "type": "server_error"}})

    events = relay_all([STREAM[0], STREAM[1] + error + STREAM[2]])

    assert isinstance(events[-1], StreamFailed)
    assert relayed_bytes(events).count(b"tok") == 1  # the chunk before the error, nothing after


def test_a_stream_cut_off_before_its_finish_fails_and_one_without_done_gets_it() -> None:
    cut = relay_all(STREAM[:3])
    assert isinstance(cut[-1], StreamFailed)

    no_done = relay_all(STREAM[:-1])
    assert relayed_bytes(no_done).endswith(DONE_FRAME)
    assert no_done[-1] == Finished(FinishReason.END_TURN)


def test_an_unterminated_last_event_still_counts() -> None:
    events = relay_all([*STREAM[:-1], b"data: [DONE]"])

    assert relayed_bytes(events).endswith(b"data: [DONE]\n\n")
    assert events[-1] == Finished(FinishReason.END_TURN)


def test_crlf_lines_and_comments_pass() -> None:
    body = b"".join(STREAM).replace(b"\n", b"\r\n")

    events = relay_all([b": keep-alive\r\n\r\n" + body[:600], b": still here\r\n\r\n" + body[600:]])

    out = relayed_bytes(events)
    assert out.startswith(b"data: ")  # comments before the answer start nothing
    assert b": still here\n\n" in out  # later ones pass
    assert events[-1] == Finished(FinishReason.END_TURN)


def test_comments_alone_start_nothing() -> None:
    relay = StreamRelay(model="fast", include_usage=True)

    assert relay.feed(b": hello\n\n") == []
    assert relay.feed(b": still thinking\n\n") == []
    assert isinstance(relay.close()[-1], StreamFailed)


def test_tool_calls_finish_as_tool_use() -> None:
    call = chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}]})

    events = relay_all([STREAM[0], frame(call), frame(chunk({}, "tool_calls")), b"data: [DONE]\n\n"])

    assert events[-1] == Finished(FinishReason.TOOL_USE)


def test_content_that_looks_like_the_markers_is_only_content() -> None:
    tricky = frame(chunk({"content": 'say "usage":{ and "finish_reason":"stop" and {"error" and [DONE'}))

    events = relay_all([STREAM[0], tricky, tricky])

    assert isinstance(events[-1], StreamFailed)  # never finished: the markers were text
    assert relayed_bytes(events).count(b"say") == 2


def test_the_encoder_writes_relayed_frames_and_only_its_own_errors() -> None:
    encoder = StreamEncoder(model="fast", message_id="chatcmpl-x", created=1, include_usage=True)

    assert encoder.encode(MessageStarted(relayed=True)) == []
    assert encoder.encode(Relayed(b"data: {}\n\n")) == [b"data: {}\n\n"]
    assert encoder.encode(UsageReported(Usage(input_tokens=1))) == []
    assert encoder.encode(Finished(FinishReason.END_TURN)) == []
    failed = encoder.encode(StreamFailed("upstream", "gone"))
    assert len(failed) == 1 and b'"error"' in failed[0]


def test_a_first_event_that_is_not_json_is_a_failure_before_anything_is_sent() -> None:
    events = relay_all([b"data: {this is not json\n\n", b"data: [DONE]\n\n"])

    assert events == [StreamFailed("upstream", "The upstream sent a malformed stream chunk.")]


def test_a_model_named_only_after_the_first_chunk_is_rewritten_from_there() -> None:
    azure_first = frame({"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []})

    events = relay_all([azure_first, *STREAM])

    out = relayed_bytes(events)
    assert b"gpt-4o-mini" not in out
    assert out.count(b'"model":"fast"') == 8  # every chunk of the answer; the first one's empty name stays
    assert out.count(b'"model":""') == 1
