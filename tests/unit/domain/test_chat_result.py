"""``ChatResult.shown_as``: the answer under the client's model name, every other field kept."""

from __future__ import annotations

import attrs

from apipod.domain.chat import ChatResult, FinishReason, TextPart, ToolUsePart, Usage


def test_shown_as_changes_the_model_and_origin_and_keeps_every_other_field() -> None:
    result = ChatResult(
        id="up-1",
        model="upstream-model",
        parts=(TextPart("hi"), ToolUsePart(id="c1", name="f", arguments="{}")),
        finish_reason=FinishReason.TOOL_USE,
        stop_sequence="END",
        usage=Usage(input_tokens=3, output_tokens=4, cached_input_tokens=1, reasoning_tokens=2),
    )
    shown = result.shown_as("asked-for", "openai")
    assert (shown.model, shown.origin) == ("asked-for", "openai")
    # a field added to ChatResult must be copied in shown_as too: this list fails until it is looked at
    names = [field.name for field in attrs.fields(ChatResult)]
    assert names == ["id", "model", "parts", "finish_reason", "stop_sequence", "usage", "origin"]
    for field in attrs.fields(ChatResult):
        if field.name not in ("model", "origin"):
            assert getattr(shown, field.name) == getattr(result, field.name), field.name
    assert shown == attrs.evolve(result, model="asked-for", origin="openai")
