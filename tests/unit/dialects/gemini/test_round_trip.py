"""A two-turn tool conversation through the codec: what turn 1 answered (call id, signature) comes back on
turn 2 on the right functionCall part, and the result names the function."""

from __future__ import annotations

import orjson

from apipod.dialects.gemini import decode_response, encode_request
from apipod.domain.chat import ChatRequest, Message, Role, TextPart, ToolResultPart, ToolSpec, ToolUsePart
from tests.fixture_path import fixture

SIGNATURE = "Eqo+Cqc+Ab4+9vtgONaaz6qwy6WXdp7gCd2w0X+Wz2gaBgY0Gv6A12JKo0y5vQwf9YQFyhMbKr1E9m17VT6HXd7jXzjaGYaE"
WEATHER = ToolSpec(name="weather", parameters={"type": "object", "properties": {"location": {"type": "string"}}})


def test_signature_from_turn_one_is_sent_back_on_turn_two() -> None:
    question = Message(Role.USER, (TextPart("Weather in San Francisco?"),))
    first = ChatRequest(model="m", messages=(question,), tools=(WEATHER,))
    first_body = encode_request(first, model="gemini-3-pro-preview", stream=False)
    assert first_body["contents"] == [{"role": "user", "parts": [{"text": "Weather in San Francisco?"}]}]

    answer = decode_response(orjson.loads(fixture("gemini/response_function_call_thought_signature.json").read_bytes()))
    (call,) = answer.parts
    assert isinstance(call, ToolUsePart)

    second = ChatRequest(
        model="m",
        messages=(
            question,
            Message(Role.ASSISTANT, answer.parts),
            Message(Role.TOOL, (ToolResultPart(call.id, (TextPart("18C, cloudy"),)),)),
        ),
        tools=(WEATHER,),
    )
    contents = encode_request(second, model="gemini-3-pro-preview", stream=False)["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "weather", "args": {"location": "San Francisco"}},
                "thoughtSignature": SIGNATURE,
            }
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "weather", "response": {"result": "18C, cloudy"}}}],
    }
