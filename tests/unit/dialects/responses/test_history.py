"""stored_items and continued: what a previous_response_id follow-up continues from."""

from __future__ import annotations

from typing import Any

from apipod.dialects.responses import continued, decode_request, stored_items
from apipod.domain.chat import Message, Role, TextPart

OUTPUT = [
    {
        "id": "msg_a_0",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hi!", "annotations": [], "logprobs": []}],
    }
]


def test_string_input_is_normalised() -> None:
    body = {"model": "m", "input": "hello", "instructions": "Be brief."}
    items = stored_items(body, {"id": "resp_a", "output": OUTPUT})
    assert items == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        *OUTPUT,
    ]


def test_item_input_is_kept() -> None:
    first: list[dict[str, Any]] = [{"role": "user", "content": "q"}]
    assert stored_items({"model": "m", "input": first}, {"output": OUTPUT}) == [*first, *OUTPUT]
    assert stored_items({"model": "m", "input": first}, {"output": None}) == first


def test_continued_prepends_history_and_drops_the_id() -> None:
    history = stored_items({"model": "m", "input": "hello", "instructions": "old"}, {"output": OUTPUT})
    body = {"model": "m", "input": "and now?", "previous_response_id": "resp_a", "instructions": "new"}
    new = continued(body, history)
    assert "previous_response_id" not in new
    assert body["previous_response_id"] == "resp_a"  # the caller's body is not changed
    assert new["instructions"] == "new"
    assert new["input"][:2] == history
    request = decode_request(new, {})
    assert request.system == (TextPart("new"),)
    assert request.messages == (
        Message(Role.USER, (TextPart("hello"),)),
        Message(Role.ASSISTANT, (TextPart("Hi!"),)),
        Message(Role.USER, (TextPart("and now?"),)),
    )


def test_continued_without_own_instructions_inherits_none() -> None:
    history = stored_items({"model": "m", "input": "hello", "instructions": "old"}, {"output": OUTPUT})
    new = continued({"model": "m", "input": [{"role": "user", "content": "more"}]}, history)
    assert decode_request(new, {}).system == ()
    assert len(new["input"]) == 3
