"""An answer's output items, replayed as the next request's input, give the same canonical parts back."""

from __future__ import annotations

from typing import Any

from apipod.dialects.responses import StreamEncoder, decode_request, encode_response
from apipod.domain.chat import (
    ChatResult,
    FinishReason,
    Message,
    Part,
    RedactedThinkingPart,
    Role,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    RedactedThinking,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ThinkingSignature,
    ToolCallDelta,
    ToolCallStarted,
)

TOOLS: list[dict[str, Any]] = [
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "s"}},
    {
        "type": "namespace",
        "name": "ns",
        "tools": [{"type": "function", "name": "close", "parameters": None, "strict": None}],
    },
]
BODY: dict[str, Any] = {"model": "x", "input": "edit it", "tools": TOOLS, "include": ["reasoning.encrypted_content"]}
PARTS: tuple[Part, ...] = (
    ThinkingPart("I will patch.", signature="EqQBsig~x", origin="anthropic"),
    RedactedThinkingPart("c2VjcmV0", origin="anthropic"),
    TextPart("Patching now."),
    ToolUsePart(id="toolu_1", name="apply_patch", arguments='{"input":"*** Begin Patch\\n*** End Patch\\n"}'),
    ToolUsePart(id="toolu_2", name="ns__close", arguments='{"id":"a"}'),
)


def follow_up(output: list[dict[str, Any]]) -> tuple[Message, ...]:
    items = [
        {"role": "user", "content": "edit it"},
        *output,
        {"type": "custom_tool_call_output", "call_id": "toolu_1", "output": "Done."},
        {"type": "function_call_output", "call_id": "toolu_2", "output": "closed"},
    ]
    return decode_request({**BODY, "input": items}, {}).messages


def expected() -> tuple[Message, ...]:
    return (
        Message(Role.USER, (TextPart("edit it"),)),
        Message(Role.ASSISTANT, PARTS),
        Message(
            Role.TOOL,
            (
                ToolResultPart("toolu_1", (TextPart("Done."),), name="apply_patch"),
                ToolResultPart("toolu_2", (TextPart("closed"),), name="ns__close"),
            ),
        ),
    )


def test_non_streamed_round_trip() -> None:
    result = ChatResult(id="u", model="m", parts=PARTS, finish_reason=FinishReason.TOOL_USE, origin="anthropic")
    answer = encode_response(result, BODY, response_id="resp_1", created=1)
    assert [item["type"] for item in answer["output"]] == [
        "reasoning",
        "reasoning",
        "message",
        "custom_tool_call",
        "function_call",
    ]
    assert follow_up(answer["output"]) == expected()
    assert decode_request({**BODY, "input": answer["output"]}, {}).signed_origins == frozenset({"anthropic"})


def test_streamed_round_trip() -> None:
    events: list[StreamEvent] = [
        MessageStarted(origin="anthropic"),
        ThinkingDelta("I will "),
        ThinkingDelta("patch."),
        ThinkingSignature("EqQBsig~x"),
        RedactedThinking("c2VjcmV0"),
        TextDelta("Patching now."),
        ToolCallStarted(key=0, id="toolu_1", name="apply_patch"),
        ToolCallDelta(key=0, fragment='{"input":"*** Begin Patch\\n'),
        ToolCallDelta(key=0, fragment='*** End Patch\\n"}'),
        ToolCallStarted(key=1, id="toolu_2", name="ns__close"),
        ToolCallDelta(key=1, fragment='{"id":"a"}'),
        Finished(FinishReason.TOOL_USE),
    ]
    encoder = StreamEncoder(BODY, model="m", response_id="resp_2", created=1)
    for event in events:
        encoder.encode(event)
    assert encoder.response is not None
    assert follow_up(encoder.response["output"]) == expected()
