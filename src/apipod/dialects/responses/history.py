"""``previous_response_id`` (docs/protocols/openai-responses.md §10): what a stored response continues from,
and the body of a follow-up with that history put in front of its own input. The HTTP layer keeps the items
and resolves the id before decoding, so every upstream sees a self-contained request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def stored_items(body: Mapping[str, Any], response: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The request's input items (a string input as one user message) followed by the answer's output items.
    ``body`` is the request as served (a follow-up's input already holds its own history)."""
    output = response.get("output")
    return input_items(body.get("input")) + [item for item in output or () if isinstance(item, Mapping)]


def continued(body: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A new body whose input is ``items`` then this body's input, without ``previous_response_id``.
    ``instructions`` are not inherited (OpenAI's rule): the follow-up's own, if any, stay."""
    new = {key: value for key, value in body.items() if key != "previous_response_id"}
    new["input"] = [*items, *input_items(body.get("input"))]
    return new


def input_items(value: object) -> list[Mapping[str, Any]]:
    """``input`` as an item list: a string is one user message; anything that is not an item is left out
    (the decoder reports it when the follow-up is decoded)."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []
