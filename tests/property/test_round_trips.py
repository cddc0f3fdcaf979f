"""decode ∘ encode round trips over canonical values built by hypothesis.

Requests: the upstream-side encoder of a dialect, read back by the same dialect's client decoder.
Responses: the client-side ``encode_response``, read back by the upstream-side ``decode_response``.
Streams: the client-side ``StreamEncoder``'s frames, read back by the upstream-side ``StreamDecoder``.

Each strategy is restricted to what the dialect can represent; what is left out, and why, is said next to
it. Gemini has no client side in apipod (no Gemini-speaking clients), so it has no round trip here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import attrs
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apipod.dialects import anthropic, openai
from apipod.domain.chat import (
    ChatRequest,
    ChatResult,
    FinishReason,
    ImagePart,
    Message,
    Part,
    RedactedThinkingPart,
    Role,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ThinkingPart,
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
    StreamFailed,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStarted,
    UsageReported,
)
from tests.property.canonical_check import assert_canonical

_N = int(os.environ.get("APIPOD_PROPERTY_EXAMPLES", "200"))
ROUND_TRIP = settings(max_examples=_N, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXT = st.text(min_size=1, max_size=15)
NON_BLANK = TEXT.filter(lambda t: bool(t.strip()))
WORD = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=8)
COUNT = st.integers(0, 10**9)
SCHEMA = st.fixed_dictionaries(
    {"type": st.just("object"), "properties": st.dictionaries(WORD, st.just({"type": "string"}), max_size=2)}
)
# Tool arguments as canonical JSON text of an object: what both dialects carry back byte for byte.
ARGUMENTS = st.dictionaries(WORD, st.integers(-99, 99) | WORD | st.booleans(), max_size=3).map(
    lambda value: orjson.dumps(value).decode()
)
MEDIA_TYPES = st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"])
IMAGE = st.one_of(
    st.builds(ImagePart, media_type=MEDIA_TYPES, data=WORD),
    st.builds(ImagePart, url=WORD.map(lambda w: f"https://img.example/{w}.png")),
)


def _unique_ids(parts: Sequence[object]) -> bool:
    ids = [p.id for p in parts if isinstance(p, ToolUsePart)]
    return len(ids) == len(set(ids))


# -- requests: OpenAI --------------------------------------------------------------------------------------------
# Left out, because OpenAI's request cannot say them: a system prompt of more than one part or with cache hints
# (it is one system message), system turns in place (lifted into the prompt), thinking parts in history and
# top_k (dropped), images or is_error in tool results (moved to a user message / written into the text),
# thinking other than an enabled budget of exactly one effort level, empty text, metadata.


@st.composite
def openai_request(draw: st.DrawFn) -> ChatRequest:
    messages: list[Message] = []
    for _ in range(draw(st.integers(1, 4))):
        role = draw(st.sampled_from([Role.USER, Role.ASSISTANT, Role.TOOL]))
        if role is Role.TOOL and messages and messages[-1].role is Role.TOOL:
            role = Role.USER  # consecutive tool messages are one canonical message
        if role is Role.USER:
            parts = draw(st.lists(st.builds(TextPart, TEXT) | IMAGE, min_size=1, max_size=3))
            messages.append(Message(Role.USER, tuple(parts)))
        elif role is Role.ASSISTANT:
            text = draw(st.lists(st.builds(TextPart, TEXT), max_size=1))
            calls = draw(
                st.lists(
                    st.builds(ToolUsePart, id=WORD, name=WORD, arguments=ARGUMENTS, signature=st.none() | WORD),
                    min_size=0 if text else 1,
                    max_size=2,
                    unique_by=lambda p: p.id,
                )
            )
            messages.append(Message(Role.ASSISTANT, (*text, *calls)))
        else:
            results = draw(
                st.lists(
                    st.builds(
                        ToolResultPart, tool_use_id=WORD, content=st.lists(st.builds(TextPart, TEXT), max_size=1)
                    ),
                    min_size=1,
                    max_size=2,
                ).map(lambda rs: [attrs.evolve(r, content=tuple(r.content)) for r in rs])
            )
            messages.append(Message(Role.TOOL, tuple(results)))
    tools = draw(
        st.lists(st.builds(ToolSpec, name=WORD, description=st.just("") | TEXT, parameters=SCHEMA), max_size=2)
    )
    choice = parallel = None
    if tools:
        parallel = draw(st.none() | st.booleans())
        kind = draw(st.none() | st.sampled_from(list(ToolChoiceKind)))
        if kind is not None:
            name = draw(WORD) if kind is ToolChoiceKind.TOOL else None
            choice = ToolChoice(kind, name=name, disable_parallel=parallel is False)
    effort = draw(st.sampled_from([None, ("low", 2048), ("medium", 8192), ("high", 24576)]))
    thinking = (
        None if effort is None else ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=effort[1], effort=effort[0])
    )
    return ChatRequest(
        model=draw(WORD),
        messages=tuple(messages),
        system=tuple(draw(st.lists(st.builds(TextPart, TEXT), max_size=1))),
        tools=tuple(tools),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        max_output_tokens=draw(st.none() | st.integers(1, 1_000_000)),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        stop=tuple(draw(st.lists(TEXT, max_size=4))),
        stream=draw(st.booleans()),
        thinking=thinking,
        user=draw(st.none() | TEXT),
        dialect="openai",
    )


def _names_dropped(request: ChatRequest) -> ChatRequest:
    """A tool result's function name is filled from the earlier call with its id: not part of the wire."""
    messages = tuple(
        Message(m.role, tuple(attrs.evolve(p, name=None) if isinstance(p, ToolResultPart) else p for p in m.parts))
        for m in request.messages
    )
    return attrs.evolve(request, messages=messages)


@ROUND_TRIP
@given(request=openai_request())
def test_openai_request_round_trip(request: ChatRequest) -> None:
    body = openai.encode_request(attrs.evolve(request, dialect=""), model=request.model, stream=request.stream)
    decoded = openai.decode_request(orjson.loads(orjson.dumps(body)))
    assert_canonical(decoded)
    assert _names_dropped(decoded) == request


# -- requests: Anthropic ------------------------------------------------------------------------------------------
# Left out: system turns in place and a system prompt of several parts without cache hints (both become one
# joined prompt), blank text (Anthropic refuses it), unsigned thinking and call signatures (not sent), thinking
# other than "disabled" (enabled or adaptive thinking rewrites temperature, top_k, tool choice and the last
# turns), a missing max_tokens (the default is sent), temperatures outside [0, 1] (clamped), a tool result
# with cache hints or a function name, and metadata beyond user_id. Turns alternate as Anthropic requires: a
# tool message is followed by the user message of the same turn or by the assistant.


@st.composite
def anthropic_request(draw: st.DrawFn) -> ChatRequest:
    messages: list[Message] = []
    text = st.builds(TextPart, NON_BLANK, cache_control=st.none() | st.just({"type": "ephemeral"}))
    for index in range(draw(st.integers(1, 4))):
        if index % 2 == 0:
            results = draw(
                st.lists(
                    st.builds(
                        ToolResultPart,
                        tool_use_id=WORD,
                        content=st.one_of(
                            st.lists(st.builds(TextPart, TEXT), max_size=1),
                            st.lists(st.builds(TextPart, NON_BLANK) | IMAGE, min_size=1, max_size=2).filter(
                                lambda c: any(isinstance(p, ImagePart) for p in c)
                            ),
                        ).map(tuple),
                        is_error=st.booleans(),
                    ),
                    max_size=2,
                )
            )
            rest = draw(st.lists(text | IMAGE, min_size=0 if results else 1, max_size=2))
            if results:
                messages.append(Message(Role.TOOL, tuple(results)))
            if rest:
                messages.append(Message(Role.USER, tuple(rest)))
        else:
            parts = draw(
                st.lists(
                    text
                    | st.builds(ToolUsePart, id=WORD, name=WORD, arguments=ARGUMENTS)
                    | st.builds(ThinkingPart, TEXT, signature=WORD)
                    | st.builds(RedactedThinkingPart, WORD),
                    min_size=1,
                    max_size=3,
                ).filter(_unique_ids)
            )
            messages.append(Message(Role.ASSISTANT, tuple(parts)))
    tools = draw(
        st.lists(st.builds(ToolSpec, name=WORD, description=st.just("") | TEXT, parameters=SCHEMA), max_size=2)
    )
    choice = None
    if tools:
        kind = draw(st.none() | st.sampled_from(list(ToolChoiceKind)))
        if kind is not None:
            name = draw(WORD) if kind is ToolChoiceKind.TOOL else None
            disable = draw(st.booleans()) and kind is not ToolChoiceKind.NONE
            choice = ToolChoice(kind, name=name, disable_parallel=disable)
    user = draw(st.none() | TEXT)
    system = draw(st.lists(text, max_size=1))
    return ChatRequest(
        model=draw(WORD),
        messages=tuple(messages),
        system=tuple(system),
        tools=tuple(tools),
        tool_choice=choice,
        parallel_tool_calls=False if choice is not None and choice.disable_parallel else None,
        max_output_tokens=draw(st.integers(1, 1_000_000)),
        temperature=draw(st.none() | st.floats(0, 1)),
        top_p=draw(st.none() | st.floats(0, 1)),
        top_k=draw(st.none() | st.integers(1, 500)),
        stop=tuple(draw(st.lists(st.text(max_size=5), max_size=3))),
        stream=draw(st.booleans()),
        thinking=draw(st.none() | st.just(ThinkingConfig(ThinkingMode.DISABLED))),
        user=user,
        metadata={"user_id": user} if user else {},
        dialect="anthropic",
    )


@ROUND_TRIP
@given(request=anthropic_request())
def test_anthropic_request_round_trip(request: ChatRequest) -> None:
    body = anthropic.encode_request(attrs.evolve(request, dialect=""), model=request.model, stream=request.stream)
    decoded = anthropic.decode_request(orjson.loads(orjson.dumps(body)))
    assert_canonical(decoded)
    assert decoded == request


# -- responses ----------------------------------------------------------------------------------------------------
# OpenAI: one message holds at most one reasoning text (with the last signature), one text, then the calls;
# stop sequences and pause_turn read back as a plain stop; images cannot be answered.
# Anthropic: cache hints and call signatures are not part of an answer; reasoning counts are not reported; the
# input count includes the cache counts (so it cannot be smaller than them).

USAGE = st.builds(
    Usage,
    input_tokens=COUNT,
    output_tokens=COUNT,
    cached_input_tokens=COUNT,
    cache_creation_input_tokens=COUNT,
    reasoning_tokens=COUNT,
)


@st.composite
def openai_result(draw: st.DrawFn) -> ChatResult:
    parts: list[Part] = []
    thinking = draw(st.none() | st.builds(ThinkingPart, st.text(max_size=10), signature=st.text(max_size=5)))
    if thinking is not None and (thinking.text or thinking.signature):
        parts.append(thinking)
    parts.extend(draw(st.lists(st.builds(TextPart, TEXT), max_size=1)))
    calls = draw(
        st.lists(
            st.builds(ToolUsePart, id=WORD, name=WORD, arguments=ARGUMENTS, signature=st.none() | WORD), max_size=2
        )
    )
    parts.extend(calls)
    reasons = [FinishReason.MAX_TOKENS, FinishReason.CONTENT_FILTER]
    reasons.append(FinishReason.TOOL_USE if calls else FinishReason.END_TURN)
    return ChatResult(
        id="chatcmpl-" + draw(WORD),
        model=draw(WORD),
        parts=tuple(parts),
        finish_reason=draw(st.sampled_from(reasons)),
        usage=draw(USAGE),
    )


@ROUND_TRIP
@given(result=openai_result())
def test_openai_response_round_trip(result: ChatResult) -> None:
    body = openai.encode_response(result, model=result.model, created=1)
    decoded = openai.decode_response(orjson.loads(orjson.dumps(body)))
    assert_canonical(decoded)
    assert decoded == result


@st.composite
def anthropic_result(draw: st.DrawFn) -> ChatResult:
    parts = draw(
        st.lists(
            st.builds(TextPart, NON_BLANK)
            | st.builds(ToolUsePart, id=WORD, name=WORD, arguments=ARGUMENTS)
            | st.builds(ThinkingPart, TEXT, signature=st.text(max_size=5))
            | st.builds(RedactedThinkingPart, WORD),
            max_size=4,
        )
    )
    calls = any(isinstance(p, ToolUsePart) for p in parts)
    reasons = [FinishReason.MAX_TOKENS, FinishReason.CONTENT_FILTER, FinishReason.PAUSE_TURN]
    reasons += [FinishReason.TOOL_USE] if calls else [FinishReason.END_TURN, FinishReason.STOP_SEQUENCE]
    cached, creation = draw(COUNT), draw(COUNT)
    usage = Usage(
        input_tokens=cached + creation + draw(COUNT),
        output_tokens=draw(COUNT),
        cached_input_tokens=cached,
        cache_creation_input_tokens=creation,
    )
    return ChatResult(
        id="msg_" + draw(WORD),
        model=draw(WORD),
        parts=tuple(parts),
        finish_reason=draw(st.sampled_from(reasons)),
        stop_sequence=draw(st.none() | TEXT),
        usage=usage,
    )


@ROUND_TRIP
@given(result=anthropic_result())
def test_anthropic_response_round_trip(result: ChatResult) -> None:
    body = anthropic.encode_response(result, model=result.model)
    decoded = anthropic.decode_response(orjson.loads(orjson.dumps(body)))
    assert_canonical(decoded)
    assert decoded == result


# -- streams ------------------------------------------------------------------------------------------------------
# Compared as what a client ends up with: the joined text and reasoning, the tool calls (id, name, joined
# arguments) in order, the final usage and the finish reason. Call arguments stream right after their start,
# as every upstream sends them (Anthropic cannot interleave two calls' arguments).


@attrs.frozen
class Outcome:
    text: str
    thinking: str
    calls: tuple[tuple[str, str, str], ...]
    usage: Usage
    finish: FinishReason | None
    failed: bool


def outcome(events: list[StreamEvent]) -> Outcome:
    text, thinking = [], []
    calls: dict[int, list[str]] = {}
    usage, finish, failed = Usage(), None, False
    for event in events:
        if isinstance(event, TextDelta):
            text.append(event.text)
        elif isinstance(event, ThinkingDelta):
            thinking.append(event.text)
        elif isinstance(event, ToolCallStarted):
            calls[event.key] = [event.id, event.name, ""]
        elif isinstance(event, ToolCallDelta):
            calls[event.key][2] += event.fragment
        elif isinstance(event, UsageReported | MessageStarted):
            usage = usage.merged(event.usage)
        elif isinstance(event, Finished):
            finish = event.reason
        elif isinstance(event, StreamFailed):
            failed = True
    return Outcome(
        "".join(text),
        "".join(thinking),
        tuple((c[0], c[1], c[2]) for _, c in sorted(calls.items())),
        usage,
        finish,
        failed,
    )


@st.composite
def stream_events(draw: st.DrawFn, *, anthropic_usage: bool) -> list[StreamEvent]:
    events: list[StreamEvent] = [MessageStarted(id="m1", model="m")]
    key = 0
    ids = draw(st.lists(WORD, min_size=3, max_size=3, unique=True))
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["text", "thinking", "call"]))
        if kind == "text":
            events.append(TextDelta(draw(TEXT)))
        elif kind == "thinking":
            events.append(ThinkingDelta(draw(TEXT)))
        elif key < len(ids):
            events.append(ToolCallStarted(key=key, id=ids[key], name=draw(WORD)))
            events.extend(ToolCallDelta(key, fragment) for fragment in draw(st.lists(TEXT, max_size=3)))
            key += 1
    if anthropic_usage:
        cached, creation = draw(COUNT), draw(COUNT)
        usage = Usage(
            input_tokens=cached + creation + draw(COUNT),
            output_tokens=draw(COUNT),
            cached_input_tokens=cached,
            cache_creation_input_tokens=creation,
        )
    else:
        usage = draw(USAGE)
    events.append(UsageReported(usage))
    reasons = [FinishReason.MAX_TOKENS, FinishReason.CONTENT_FILTER]
    reasons.append(FinishReason.TOOL_USE if key else FinishReason.END_TURN)
    events.append(Finished(draw(st.sampled_from(reasons))))
    return events


def _split(frames: list[bytes]) -> list[tuple[str | None, bytes]]:
    out: list[tuple[str | None, bytes]] = []
    for block in b"".join(frames).split(b"\n\n"):
        name: str | None = None
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data.append(line[6:])
        if name is not None or data:
            out.append((name, b"\n".join(data)))
    return out


def _through(encoder: Any, decoder: Any, events: list[StreamEvent]) -> list[StreamEvent]:
    frames = [frame for event in events for frame in encoder.encode(event)]
    decoded: list[StreamEvent] = []
    for name, data in _split(frames):
        decoded.extend(decoder.feed(name, data))
    decoded.extend(decoder.close())
    for event in decoded:
        assert_canonical(event)
    return decoded


@ROUND_TRIP
@given(events=stream_events(anthropic_usage=False))
def test_openai_stream_round_trip(events: list[StreamEvent]) -> None:
    encoder = openai.StreamEncoder(model="m", message_id="chatcmpl-1", created=1)
    assert outcome(_through(encoder, openai.StreamDecoder(), events)) == outcome(events)


@ROUND_TRIP
@given(events=stream_events(anthropic_usage=True))
def test_anthropic_stream_round_trip(events: list[StreamEvent]) -> None:
    encoder = anthropic.StreamEncoder(model="m", message_id="msg_1")
    assert outcome(_through(encoder, anthropic.StreamDecoder(), events)) == outcome(events)


@ROUND_TRIP
@given(message=st.text(min_size=1, max_size=20), kind=st.sampled_from(["overloaded", "rate_limited", "upstream"]))
def test_stream_failures_round_trip(message: str, kind: str) -> None:
    """A failure the client's encoder writes reads back as a failure (of the same kind, for Anthropic)."""
    started = MessageStarted(id="m1", model="m")
    failed = StreamFailed(kind, message)
    for encoder, decoder in (
        (openai.StreamEncoder(model="m", message_id="chatcmpl-1", created=1), openai.StreamDecoder()),
        (anthropic.StreamEncoder(model="m", message_id="msg_1"), anthropic.StreamDecoder()),
    ):
        decoded = _through(encoder, decoder, [started, TextDelta("x"), failed])
        assert isinstance(decoded[-1], StreamFailed)
        assert outcome(decoded).text == "x"
