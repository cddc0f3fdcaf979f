"""The model resources and Google's error envelope, as the google-genai SDK reads them."""

from __future__ import annotations

import pytest
from google.genai import types

from apipod.dialects.gemini import encode_model, encode_models, error_body


def test_model_resource() -> None:
    body = encode_model("fast")
    assert body["name"] == "models/fast"
    assert body["supportedGenerationMethods"] == ["generateContent", "streamGenerateContent", "countTokens"]
    parsed = types.Model._from_response(response=body, kwargs={})
    assert parsed.name == "models/fast"
    assert parsed.display_name == "fast"
    assert parsed.input_token_limit and parsed.output_token_limit


def test_model_list() -> None:
    assert encode_models(["a", "b"]) == {"models": [encode_model("a"), encode_model("b")]}
    assert encode_models([]) == {"models": []}
    response = types.ListModelsResponse._from_response(response=encode_models(["a"]), kwargs={})
    assert [m.name for m in response.models or []] == ["models/a"]


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (409, "ABORTED"),
        (413, "INVALID_ARGUMENT"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (501, "NOT_IMPLEMENTED"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (418, "FAILED_PRECONDITION"),
        (599, "INTERNAL"),
    ],
)
def test_error_envelope(status: int, name: str) -> None:
    assert error_body(status, "nope") == {"error": {"code": status, "message": "nope", "status": name}}
