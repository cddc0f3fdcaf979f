"""Output caps a client sends are bounded integers (issue 9, finding 6): 1e18 or 2**70 is a 400, not a request."""

from __future__ import annotations

from typing import Any

import pytest

from apipod.dialects.anthropic import request as anthropic
from apipod.dialects.openai import request as openai
from apipod.domain.errors import InvalidRequestError

HUGE = [10**18, 1e18, openai.MAX_OUTPUT_TOKENS + 1]
BEYOND_64_BITS = [2**70, 2**64, -(2**70)]  # refused by the shared integer reader, whatever its wording


def openai_body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def anthropic_body(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", HUGE)
def test_openai_caps_above_the_bound_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        openai.decode_request(openai_body(**{field: value}))
    assert caught.value.param == field
    assert f"must be at most {openai.MAX_OUTPUT_TOKENS}" in caught.value.message


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "100", float("inf")])
def test_openai_caps_must_be_positive_integers(field: str, value: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        openai.decode_request(openai_body(**{field: value}))
    assert caught.value.param == field


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
@pytest.mark.parametrize("value", BEYOND_64_BITS)
def test_openai_caps_beyond_64_bits_are_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        openai.decode_request(openai_body(**{field: value}))
    assert caught.value.param == field


@pytest.mark.parametrize("value", BEYOND_64_BITS)
def test_anthropic_max_tokens_beyond_64_bits_is_refused(value: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        anthropic.decode_request(anthropic_body(max_tokens=value))
    assert caught.value.param == "max_tokens"


def test_openai_cap_at_the_bound_is_accepted() -> None:
    request = openai.decode_request(openai_body(max_completion_tokens=openai.MAX_OUTPUT_TOKENS, max_tokens=1e3))
    assert request.max_output_tokens == 1000


@pytest.mark.parametrize("value", HUGE)
def test_anthropic_max_tokens_above_the_bound_is_refused(value: object) -> None:
    for decode in (anthropic.decode_request, anthropic.decode_count_tokens_request):
        with pytest.raises(InvalidRequestError) as caught:
            decode(anthropic_body(max_tokens=value))
        assert caught.value.param == "max_tokens"
        bound = anthropic.MAX_OUTPUT_TOKENS
        assert caught.value.message == f"max_tokens: Input should be less than or equal to {bound}"


@pytest.mark.parametrize("value", [0, -5, False, 2.5, "10"])
def test_anthropic_max_tokens_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        anthropic.decode_request(anthropic_body(max_tokens=value))
    assert caught.value.param == "max_tokens"


def test_anthropic_max_tokens_at_the_bound_is_accepted() -> None:
    request = anthropic.decode_request(anthropic_body(max_tokens=anthropic.MAX_OUTPUT_TOKENS))
    assert request.max_output_tokens == anthropic.MAX_OUTPUT_TOKENS
