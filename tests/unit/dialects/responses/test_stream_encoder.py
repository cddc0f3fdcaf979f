"""StreamEncoder: the §6.3 event order, the official SDK reading every event, and the order invariants over
random event sequences."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response

from apipod.dialects.responses import StreamEncoder
from apipod.domain.chat import FinishReason, Usage
from apipod.domain.stream import (
    BlockStopped,
    FailureKind,
    Finished,
    MessageStarted,
    RedactedThinking,
    StreamEvent,
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.fixture_path import fixture
from tests.unit.dialects.responses.sse import STREAM_EVENT, parse_frames

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "name": "exec_command", "parameters": {"type": "object"}, "strict": False},
    {"type": "custom", "name": "apply_patch"},
    {
        "type": "namespace",
        "name": "ns",
        "description": "d",
        "tools": [{"type": "function", "name": "close", "parameters": None, "strict": None}],
    },
]
BODY: dict[str, Any] = {
    "model": "x",
    "input": "hi",
    "stream": True,
    "tools": TOOLS,
    "include": ["reasoning.encrypted_content"],
}


def run(
    events: list[StreamEvent], body: dict[str, Any] | None = None
) -> tuple[StreamEncoder, list[tuple[str, dict[str, Any]]]]:
    encoder = StreamEncoder(
        BODY if body is None else body, model="my-alias", response_id="resp_abc", created=1700000000
    )
    frames: list[bytes] = []
    for event in events:
        frames.extend(encoder.encode(event))
    parsed = parse_frames(frames)
    for _, payload in parsed:
        STREAM_EVENT.validate_python(payload)  # the official SDK reads every event
    return encoder, parsed


def collapse(kinds: list[str]) -> list[str]:
    """Runs of the same delta event as one (the number of deltas is the upstream's business)."""
    return [
        kind
        for index, kind in enumerate(kinds)
        if index == 0 or kind != kinds[index - 1] or not kind.endswith(".delta")
    ]


def names(parsed: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [name for name, _ in parsed]


def test_text_stream_matches_the_stream_codex_accepted() -> None:
    encoder, parsed = run(
        [
            MessageStarted(id="m", model="up", usage=Usage(input_tokens=10), origin="anthropic"),
            TextDelta("Hello"),
            TextDelta(""),
            TextDelta(" world"),
            BlockStopped(),
            UsageReported(Usage(input_tokens=10, output_tokens=3)),
            Finished(FinishReason.END_TURN),
        ]
    )
    recorded = [
        line[7:]
        for line in fixture("codex-cli/text_response.sse").read_text().splitlines()
        if line.startswith("event: ")
    ]
    assert collapse(names(parsed)) == collapse(recorded)
    assert [payload["sequence_number"] for _, payload in parsed] == list(range(len(parsed)))
    assert parsed[0][1]["response"]["status"] == "in_progress"
    assert parsed[0][1]["response"]["usage"] is None
    deltas = [payload["delta"] for name, payload in parsed if name == "response.output_text.delta"]
    assert deltas == ["Hello", " world"]
    done = parsed[-2][1]["item"]
    assert done["content"][0]["text"] == "Hello world"
    final = parsed[-1][1]["response"]
    assert final["status"] == "completed"
    assert final["output"] == [done]
    assert final["usage"]["total_tokens"] == 13
    assert encoder.response == final
    Response.model_validate(final)


def test_reasoning_then_function_call() -> None:
    _, parsed = run(
        [
            MessageStarted(origin="anthropic"),
            ThinkingDelta("Plan"),
            ThinkingDelta("ning"),
            ThinkingSignature("sig"),
            BlockStopped(),
            ToolCallStarted(key=0, id="toolu_1", name="ns__close"),
            ToolCallDelta(key=0, fragment='{"a":'),
            ToolCallDelta(key=0, fragment="1}"),
            Finished(FinishReason.TOOL_USE),
        ]
    )
    assert names(parsed) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    reasoning = parsed[8][1]["item"]
    assert reasoning == {
        "id": "rs_abc_0",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "Planning"}],
        "status": "completed",
        "encrypted_content": "anthropic~sig",
    }
    added = parsed[9][1]
    assert added["output_index"] == 1
    assert added["item"]["arguments"] == ""
    assert added["item"]["namespace"] == "ns"
    assert added["item"]["name"] == "close"
    assert parsed[12][1]["arguments"] == '{"a":1}'
    call = parsed[13][1]["item"]
    assert call["id"] == "fc_abc_1"
    assert call["call_id"] == "toolu_1"
    assert parsed[-1][1]["response"]["output"] == [reasoning, call]


def test_custom_tool_call_is_unwrapped_at_its_end() -> None:
    _, parsed = run(
        [
            MessageStarted(),
            ToolCallStarted(key=0, id="call_1", name="apply_patch"),
            ToolCallDelta(key=0, fragment='{"inp'),
            ToolCallDelta(key=0, fragment='ut":"*** Begin Patch\\n"}'),
            Finished(FinishReason.TOOL_USE),
        ]
    )
    assert names(parsed)[2:] == [
        "response.output_item.added",
        "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert parsed[2][1]["item"]["type"] == "custom_tool_call"
    assert parsed[3][1]["delta"] == "*** Begin Patch\n"
    assert parsed[4][1]["input"] == "*** Begin Patch\n"
    assert parsed[5][1]["item"] == {
        "id": "ctc_abc_0",
        "type": "custom_tool_call",
        "status": "completed",
        "call_id": "call_1",
        "name": "apply_patch",
        "input": "*** Begin Patch\n",
    }


def test_items_close_when_the_content_kind_changes() -> None:
    _, parsed = run(
        [
            MessageStarted(),
            ThinkingDelta("t"),
            TextDelta("a"),
            ToolCallStarted(0, "c", "exec_command"),
            TextDelta("b"),
            Finished(FinishReason.END_TURN),
        ]
    )
    final = parsed[-1][1]["response"]["output"]
    assert [item["type"] for item in final] == ["reasoning", "message", "function_call", "message"]
    assert [item["id"] for item in final] == ["rs_abc_0", "msg_abc_1", "fc_abc_2", "msg_abc_3"]
    assert final[2]["arguments"] == "{}"


def test_redacted_and_signature_only_reasoning_need_include() -> None:
    events: list[StreamEvent] = [
        MessageStarted(origin="anthropic"),
        RedactedThinking("blob"),
        ThinkingSignature("lone"),
        TextDelta("x"),
        Finished(FinishReason.END_TURN),
    ]
    _, parsed = run(events)
    output = parsed[-1][1]["response"]["output"]
    assert [item.get("encrypted_content") for item in output] == ["anthropic~redacted~blob", "anthropic~lone", None]
    _, bare = run(events, {"model": "x", "input": "hi"})
    assert [item["type"] for item in bare[-1][1]["response"]["output"]] == ["message"]


def test_max_tokens_is_incomplete() -> None:
    _, parsed = run([MessageStarted(), TextDelta("cut"), Finished(FinishReason.MAX_TOKENS)])
    name, payload = parsed[-1]
    assert name == "response.incomplete"
    assert payload["response"]["status"] == "incomplete"
    assert payload["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_failures_map_to_codes_codex_understands() -> None:
    for kind, code in [
        (FailureKind.RATE_LIMITED, "rate_limit_exceeded"),
        (FailureKind.OVERLOADED, "server_error"),
        (FailureKind.UPSTREAM, "server_error"),
        (FailureKind.INTERNAL, "server_error"),
    ]:
        encoder, parsed = run([MessageStarted(), TextDelta("a"), StreamFailed(kind, "Busy.")])
        name, payload = parsed[-1]
        assert name == "response.failed"
        error = payload["response"]["error"]
        assert error["code"] == code
        assert ("try again later" in error["message"]) is (kind is FailureKind.RATE_LIMITED)
        assert payload["response"]["usage"] is not None
        assert encoder.response == payload["response"]
        assert encoder.encode(Finished(FinishReason.END_TURN)) == []


def test_keepalive_is_a_numbered_in_progress_event() -> None:
    encoder = StreamEncoder(BODY, model="m", response_id="resp_k", created=1)
    frames = [
        encoder.keepalive(),
        *encoder.encode(MessageStarted()),
        encoder.keepalive(),
        *encoder.encode(TextDelta("a")),
    ]
    frames += [encoder.keepalive(), *encoder.encode(Finished(FinishReason.END_TURN))]
    parsed = parse_frames(frames)
    assert names(parsed)[:4] == [
        "response.created",
        "response.in_progress",
        "response.in_progress",
        "response.output_item.added",
    ]
    assert [payload["sequence_number"] for _, payload in parsed] == list(range(len(parsed)))
    assert "response.in_progress" in names(parsed)[4:-1]
    assert encoder.keepalive() == b""
    assert encoder.response is not None


def test_failure_before_any_event_still_starts_the_stream() -> None:
    _, parsed = run([StreamFailed(FailureKind.UPSTREAM, "down")])
    assert names(parsed) == ["response.created", "response.in_progress", "response.failed"]


# --- order invariants over random event sequences -------------------------------------------------

_CONTENT = st.one_of(
    st.builds(TextDelta, st.text(max_size=5)),
    st.builds(ThinkingDelta, st.text(max_size=5)),
    st.builds(ThinkingSignature, st.text(max_size=5)),
    st.builds(RedactedThinking, st.text(max_size=5)),
    st.builds(
        ToolCallStarted,
        key=st.integers(0, 3),
        id=st.sampled_from(["c1", "c2"]),
        name=st.sampled_from(["exec_command", "apply_patch", "ns__close", "other"]),
    ),
    st.builds(ToolCallDelta, key=st.integers(0, 3), fragment=st.sampled_from(['{"input":"x"}', '{"a"', ":1}", ""])),
    st.just(BlockStopped()),
    st.builds(UsageReported, st.builds(Usage, st.integers(0, 9), st.integers(0, 9))),
)
_END = st.one_of(
    st.builds(Finished, st.sampled_from(list(FinishReason))),
    st.builds(StreamFailed, st.sampled_from(list(FailureKind)), st.text(max_size=5)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_CONTENT, max_size=25), _END, st.booleans())
def test_order_invariants(content: list[StreamEvent], end: StreamEvent, include: bool) -> None:
    body = dict(BODY) if include else {"model": "x", "input": "hi", "tools": TOOLS}
    _, parsed = run([MessageStarted(origin="anthropic"), *content, end, TextDelta("after")], body)
    assert [payload["sequence_number"] for _, payload in parsed] == list(range(len(parsed)))
    assert names(parsed)[:2] == ["response.created", "response.in_progress"]
    terminal = [
        name for name in names(parsed) if name in ("response.completed", "response.incomplete", "response.failed")
    ]
    assert len(terminal) == 1
    assert parsed[-1][0] == terminal[0]
    open_index: int | None = None
    done_items: list[dict[str, Any]] = []
    for name, payload in parsed[2:-1]:
        if name == "response.output_item.added":
            assert open_index is None
            assert payload["output_index"] == len(done_items)
            open_index = payload["output_index"]
        elif name == "response.output_item.done":
            assert payload["output_index"] == open_index
            done_items.append(payload["item"])
            open_index = None
        else:
            assert open_index is not None, name
            assert payload["output_index"] == open_index
    final = parsed[-1][1]["response"]
    assert final["output"] == done_items
    Response.model_validate(final)
    ids = [item["id"] for item in done_items]
    assert len(set(ids)) == len(ids)
    for item in done_items:
        if item["type"] == "function_call":
            orjson.dumps(item["arguments"])
            assert item["name"] != "apply_patch"
        if not include:
            assert "encrypted_content" not in item


def test_reasoning_and_custom_tool_stream_matches_the_stream_codex_accepted() -> None:
    _, parsed = run(
        [
            MessageStarted(origin="openai"),
            ThinkingDelta("**Creating"),
            ThinkingDelta(" the file**"),
            ThinkingSignature("gAAAA"),
            ToolCallStarted(key=0, id="call_1", name="apply_patch"),
            ToolCallDelta(key=0, fragment='{"input":"*** Begin Patch\\n*** End Patch\\n"}'),
            Finished(FinishReason.TOOL_USE),
        ]
    )
    recorded = [
        line[7:]
        for line in fixture("codex-cli/apply_patch_response_1.sse").read_text().splitlines()
        if line.startswith("event: ")
    ]
    assert collapse(names(parsed)) == collapse(recorded)
    assert parsed[-1][1]["response"]["output"][0]["encrypted_content"] == "openai~gAAAA"


def test_custom_tool_call_without_fragments() -> None:
    _, parsed = run(
        [MessageStarted(), ToolCallStarted(key=0, id="c", name="apply_patch"), Finished(FinishReason.TOOL_USE)]
    )
    assert names(parsed)[2:] == [
        "response.output_item.added",
        "response.custom_tool_call_input.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert parsed[-2][1]["item"]["input"] == ""
