"""The Chat Completions client's ``response_format`` -> ``ChatRequest.response_format``."""

from __future__ import annotations

from typing import Any

import pytest

from apipod.dialects.openai import decode_request
from apipod.domain.chat import ResponseFormat, ResponseFormatKind
from apipod.domain.errors import InvalidRequestError

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}


def decode(response_format: object) -> ResponseFormat | None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if response_format is not None:
        body["response_format"] = response_format
    return decode_request(body).response_format


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (None, None),
        ({"type": "text"}, None),
        ({"type": "json_object"}, ResponseFormat(kind=ResponseFormatKind.JSON_OBJECT)),
        (
            {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True}},
            ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA, schema=SCHEMA, name="answer", strict=True),
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "answer"}},
            ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA, name="answer"),
        ),
    ],
)
def test_decoded(wire: object, expected: ResponseFormat | None) -> None:
    assert decode(wire) == expected


@pytest.mark.parametrize(
    ("wire", "param"),
    [
        ("json_object", "response_format"),
        ({"type": "yaml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        ({"type": "json_schema", "json_schema": {"schema": []}}, "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {"name": 5}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {"strict": "yes"}}, "response_format.json_schema.strict"),
    ],
)
def test_bad_values_name_the_field(wire: object, param: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode(wire)
    assert caught.value.param == param
