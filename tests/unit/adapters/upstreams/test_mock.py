"""MockUpstream: the deterministic local model."""

from __future__ import annotations

import time

import orjson

from apipod.adapters.upstreams.mock import MockUpstream
from apipod.domain.catalog import UpstreamKind
from apipod.domain.chat import (
    ChatRequest,
    FinishReason,
    Message,
    Role,
    TextPart,
    ToolChoice,
    ToolChoiceKind,
    ToolResultPart,
    ToolSpec,
    ToolUsePart,
    Usage,
)
from apipod.domain.stream import (
    Finished,
    MessageStarted,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.unit.adapters.upstreams.conftest import make_call, user_request

CALL = make_call(UpstreamKind.MOCK, "", model="mock-echo")
TOOLS = (ToolSpec("get_weather"), ToolSpec("get_time"))


async def stream(request: ChatRequest, **options: object) -> list[StreamEvent]:
    call = make_call(UpstreamKind.MOCK, "", model="mock-echo", options=options)
    return [e async for e in MockUpstream().stream(call, request)]


async def test_complete_echoes_the_last_user_message() -> None:
    request = user_request("hello brave new world")  # 21 characters
    result = await MockUpstream().complete(CALL, request)
    assert result.text() == "Echo: hello brave new world"
    assert result.finish_reason is FinishReason.END_TURN
    assert result.usage == Usage(input_tokens=5, output_tokens=5)  # 21 // 4; "Echo:" + four words
    assert result.model == "mock-echo"


async def test_answers_are_deterministic() -> None:
    request = user_request("same again")
    first, second = await MockUpstream().complete(CALL, request), await MockUpstream().complete(CALL, request)
    assert first == second
    assert first.id == second.id != (await MockUpstream().complete(CALL, user_request("other"))).id
    assert await stream(request) == await stream(request)


async def test_stream_is_word_by_word_and_matches_complete() -> None:
    request = user_request("one  two\nthree")
    events = await stream(request)
    result = await MockUpstream().complete(CALL, request)
    assert isinstance(events[0], MessageStarted)
    assert events[0].usage == Usage(input_tokens=3)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Echo: ", "one  ", "two\n", "three"]
    assert "".join(deltas) == result.text()
    assert events[-2:] == [UsageReported(result.usage), Finished(FinishReason.END_TURN)]
    assert result.usage.output_tokens == len(deltas)


async def test_tiny_prompt_counts_one_input_token() -> None:
    result = await MockUpstream().complete(CALL, user_request(""))
    assert result.text() == "Echo:"
    assert result.usage == Usage(input_tokens=1, output_tokens=1)


async def test_delay_between_words() -> None:
    started = time.perf_counter()
    events = await stream(user_request("a b c"), delay_ms=30)  # four pieces: three pauses
    assert time.perf_counter() - started >= 0.09
    assert len([e for e in events if isinstance(e, TextDelta)]) == 4


async def test_max_output_tokens_cuts_the_answer() -> None:
    request = user_request("a b c d e", max_output_tokens=3)
    result = await MockUpstream().complete(CALL, request)
    assert result.text() == "Echo: a b "
    assert result.finish_reason is FinishReason.MAX_TOKENS
    assert result.usage.output_tokens == 3
    assert (await stream(request))[-1] == Finished(FinishReason.MAX_TOKENS)


async def test_call_prefix_calls_the_first_tool() -> None:
    request = user_request("call the weather tool", tools=TOOLS)
    result = await MockUpstream().complete(CALL, request)
    (part,) = result.parts
    assert isinstance(part, ToolUsePart)
    assert (part.name, orjson.loads(part.arguments)) == ("get_weather", {})
    assert result.finish_reason is FinishReason.TOOL_USE
    assert result.usage.output_tokens == 1
    events = await stream(request)
    assert events[1:3] == [ToolCallStarted(key=0, id=part.id, name="get_weather"), ToolCallDelta(0, "{}")]
    assert events[-1] == Finished(FinishReason.TOOL_USE)


async def test_no_tool_call_without_tools_or_with_tool_choice_none() -> None:
    assert (await MockUpstream().complete(CALL, user_request("call it"))).text() == "Echo: call it"
    none = ToolChoice(ToolChoiceKind.NONE)
    result = await MockUpstream().complete(CALL, user_request("call it", tools=TOOLS, tool_choice=none))
    assert result.text() == "Echo: call it"


async def test_tool_result_is_echoed_so_a_tool_loop_ends() -> None:
    request = ChatRequest(
        model="demo",
        messages=(
            Message(Role.USER, (TextPart("call the weather tool"),)),
            Message(Role.ASSISTANT, (ToolUsePart("call_1", "get_weather"),)),
            Message(Role.TOOL, (ToolResultPart("call_1", (TextPart("sunny"),)),)),
        ),
        tools=TOOLS,
    )
    result = await MockUpstream().complete(CALL, request)
    assert result.text() == "Echo: sunny"
    assert result.finish_reason is FinishReason.END_TURN


async def test_list_models() -> None:
    assert await MockUpstream().list_models(CALL.upstream) == ["mock-echo"]
