from __future__ import annotations

from apipod.domain.catalog import Account, Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import ChatResult, FinishReason, Message, Role, TextPart, ToolResultPart, ToolUsePart
from apipod.domain.stream import Finished, MessageStarted, ToolCallDelta, ToolCallStarted
from tests.unit.application.fakes import make_world, user_request

CATALOG = Catalog(
    upstreams=(Upstream(name="g", kind=UpstreamKind.GOOGLE_AI_STUDIO, accounts=(Account(0, "k"),)),),
    models=(UpstreamModel(name="gem", upstream="g", upstream_model="gemini-3-pro-preview"),),
    plans=(Plan(name="p", routes=(Route("gem"),)),),
)


def second_turn(call_id: str) -> Message:
    return Message(Role.ASSISTANT, (ToolUsePart(id=call_id, name="weather", arguments='{"city":"Paris"}'),))


async def test_a_signature_dropped_by_the_client_is_sent_back_to_the_upstream_that_issued_it() -> None:
    world = await make_world(CATALOG)
    key = (await world.gateway.issue_key(name="a", plan="p")).plaintext
    world.upstream.script(
        "gem",
        ChatResult(
            id="r",
            model="gemini",
            parts=(ToolUsePart(id="call_1", name="weather", arguments="{}", signature="SIG-1"),),
            finish_reason=FinishReason.TOOL_USE,
        ),
    )
    await world.gateway.complete(key, user_request("weather?"))
    follow_up = user_request("weather?")
    follow_up = follow_up.__class__(
        model=follow_up.model,
        messages=(
            *follow_up.messages,
            second_turn("call_1"),
            Message(Role.TOOL, (ToolResultPart(tool_use_id="call_1", content=(TextPart("sunny"),)),)),
        ),
    )
    await world.gateway.complete(key, follow_up)
    sent = world.upstream.calls[-1].request
    [call] = [p for m in sent.messages for p in m.parts if isinstance(p, ToolUsePart)]
    assert call.signature == "SIG-1"


async def test_streamed_signatures_are_remembered_and_unknown_ids_left_alone() -> None:
    world = await make_world(CATALOG)
    key = (await world.gateway.issue_key(name="a", plan="p")).plaintext
    world.upstream.script(
        "gem",
        [
            MessageStarted(),
            ToolCallStarted(key=0, id="call_9", name="weather", signature="SIG-9"),
            ToolCallDelta(key=0, fragment="{}"),
            Finished(FinishReason.TOOL_USE),
        ],
    )
    events = [e async for e in await world.gateway.stream(key, user_request(stream=True))]
    assert isinstance(events[-1], Finished)
    request = user_request("again")
    request = request.__class__(model=request.model, messages=(second_turn("call_9"), second_turn("call_x")))
    await world.gateway.complete(key, request)
    sent = world.upstream.calls[-1].request
    signatures = [p.signature for m in sent.messages for p in m.parts if isinstance(p, ToolUsePart)]
    assert signatures == ["SIG-9", None]


async def test_signatures_are_not_sent_to_another_kind_of_upstream() -> None:
    world = await make_world(CATALOG)
    world.gateway.signatures.remember("call_1", "SIG-1", "anthropic")
    request = user_request("x")
    request = request.__class__(model=request.model, messages=(second_turn("call_1"),))
    assert world.gateway.signatures.restore(request, "google_ai_studio") is request
