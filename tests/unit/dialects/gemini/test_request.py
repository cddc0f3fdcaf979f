"""encode_request: canonical requests -> Gemini bodies, checked against the composed fixture and the rules of
docs/protocols/gemini.md §2 / docs/protocols/translation.md §1-5."""

from __future__ import annotations

import orjson
import pytest

from apipod.dialects.gemini import SKIP_SIGNATURE, encode_request, parse_arguments, tool_name_map
from apipod.domain.chat import (
    ChatRequest,
    ImagePart,
    Message,
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
)
from tests.fixture_path import fixture

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)


def user(text: str) -> Message:
    return Message(Role.USER, (TextPart(text),))


def result(call_id: str, text: str, *, is_error: bool = False, images: tuple[ImagePart, ...] = ()) -> Message:
    return Message(Role.TOOL, (ToolResultPart(call_id, (TextPart(text), *images), is_error=is_error),))


def request(*messages: Message, **kw: object) -> ChatRequest:
    return ChatRequest(model="client-model", messages=messages, **kw)  # type: ignore[arg-type]


def test_matches_the_composed_fixture() -> None:
    req = request(
        user("What's the weather in Paris and Tokyo?"),
        Message(
            Role.ASSISTANT,
            (
                ToolUsePart("call_1", "get_weather", '{"city":"Paris"}', signature="EpEgCo4gAb4example"),
                ToolUsePart("call_2", "get_weather", '{"city": "Tokyo"}'),
            ),
        ),
        result("call_1", "18C, cloudy"),
        result("call_2", "25C, sunny"),
        system=(TextPart("You are a helpful assistant."),),
        tools=(WEATHER,),
        tool_choice=ToolChoice(ToolChoiceKind.AUTO),
        temperature=0.7,
        max_output_tokens=8192,
        thinking=ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=2048),
    )
    body = encode_request(req, model="gemini-2.5-flash", stream=False)
    assert body == orjson.loads(fixture("gemini/request_tools_thinking.json").read_bytes())


def test_parallel_calls_keep_the_signature_on_the_first_only_even_on_gemini_3() -> None:
    req = request(
        user("go"),
        Message(
            Role.ASSISTANT,
            (ToolUsePart("a", "f", "{}", signature="SIG"), ToolUsePart("b", "f", '{"x":1}')),
        ),
    )
    parts = encode_request(req, model="gemini-3-pro-preview", stream=True)["contents"][1]["parts"]
    assert parts == [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "SIG"},
        {"functionCall": {"name": "f", "args": {"x": 1}}},
    ]


def test_gemini_3_gets_the_skip_sentinel_on_the_first_unsigned_call_of_each_model_turn() -> None:
    turn = Message(Role.ASSISTANT, (TextPart("let me check"), ToolUsePart("a", "f"), ToolUsePart("b", "f")))
    req = request(
        user("go"), turn, result("a", "1"), result("b", "2"), Message(Role.ASSISTANT, (ToolUsePart("c", "f"),))
    )
    contents = encode_request(req, model="gemini-3-flash-preview", stream=False)["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model"]
    assert contents[1]["parts"] == [
        {"text": "let me check"},
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SKIP_SIGNATURE},
        {"functionCall": {"name": "f", "args": {}}},
    ]
    assert contents[3]["parts"] == [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": SKIP_SIGNATURE}]
    older = encode_request(req, model="gemini-2.5-pro", stream=False)["contents"]
    assert "thoughtSignature" not in orjson.dumps(older).decode()


def test_tool_results_name_the_function_and_follow_the_response_object_rules() -> None:
    png = ImagePart(media_type="image/png", data="iVBORw0KGgo=")
    req = request(
        user("go"),
        Message(Role.ASSISTANT, (ToolUsePart("call_a", "read_file"), ToolUsePart("call_b", "lookup"))),
        result("call_a", '{"lines": 3}', images=(png,)),
        result("call_b", "not found", is_error=True),
        user("and now?"),
    )
    contents = encode_request(req, model="gemini-2.5-flash", stream=False)["contents"]
    assert len(contents) == 3
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "read_file", "response": {"lines": 3}}},
            {"functionResponse": {"name": "lookup", "response": {"error": "not found"}}},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"text": "and now?"},
        ],
    }


def test_a_result_whose_call_is_unknown_uses_its_own_name_then_its_id() -> None:
    req = request(
        user("go"),
        Message(Role.TOOL, (ToolResultPart("x1", (TextPart("[1, 2]"),), name="f"), ToolResultPart("x2", ()))),
    )
    parts = encode_request(req, model="gemini-2.5-flash", stream=False)["contents"][0]["parts"]
    assert parts[0] == {"functionResponse": {"name": "f", "response": {"result": "[1, 2]"}}}
    assert parts[1] == {"functionResponse": {"name": "x2", "response": {"result": ""}}}


def test_call_ids_are_sent_only_when_asked() -> None:
    req = request(user("go"), Message(Role.ASSISTANT, (ToolUsePart("toolu_1", "f"),)), result("toolu_1", "ok"))
    contents = encode_request(req, model="gemini-2.5-flash", stream=False, call_ids=True)["contents"]
    assert contents[1]["parts"][0]["functionCall"]["id"] == "toolu_1"
    assert contents[2]["parts"][0]["functionResponse"]["id"] == "toolu_1"


def test_images_inline_data_urls_and_file_uris() -> None:
    req = request(
        Message(
            Role.USER,
            (
                TextPart(""),
                TextPart("what is this?"),
                ImagePart(media_type="image/jpeg", data="AAAA"),
                ImagePart(url="data:image/webp;base64,UklGR"),
                ImagePart(url="data:image/png,notbase64"),
                ImagePart(url="https://example.com/cat.png"),
            ),
        )
    )
    parts = encode_request(req, model="gemini-2.5-flash", stream=False)["contents"][0]["parts"]
    assert parts == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/jpeg", "data": "AAAA"}},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGR"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
    ]


def test_system_turns_merge_and_a_leading_model_turn() -> None:
    req = request(
        Message(Role.SYSTEM, (TextPart("Be brief."),)),
        Message(Role.ASSISTANT, (TextPart("Hello!"),)),
        user("hi"),
        user("there"),
        system=(TextPart("You are apipod."), TextPart("")),
    )
    body = encode_request(req, model="gemini-2.5-flash", stream=False)
    assert body["systemInstruction"] == {"parts": [{"text": "You are apipod."}, {"text": "Be brief."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "."}]},
        {"role": "model", "parts": [{"text": "Hello!"}]},
        {"role": "user", "parts": [{"text": "hi"}, {"text": "there"}]},
    ]
    assert "tools" not in body
    assert "generationConfig" not in body


def test_thinking_history_and_signatures_go_back_on_their_parts() -> None:
    req = request(
        user("count the r's"),
        Message(
            Role.ASSISTANT,
            (ThinkingPart("**Counting**", "TSIG"), TextPart("There are 3."), ThinkingPart("", "TURNSIG")),
        ),
        user("sure?"),
    )
    parts = encode_request(req, model="gemini-3-pro-preview", stream=False)["contents"][1]["parts"]
    assert parts == [
        {"text": "**Counting**", "thought": True, "thoughtSignature": "TSIG"},
        {"text": "There are 3.", "thoughtSignature": "TURNSIG"},
    ]


def test_a_lone_signature_before_text_goes_on_the_next_text() -> None:
    turn = Message(Role.ASSISTANT, (ThinkingPart("", "S"), ToolUsePart("c", "f", signature="C"), TextPart("x")))
    parts = encode_request(request(user("go"), turn), model="gemini-2.5-flash", stream=False)["contents"][1]["parts"]
    assert parts == [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "C"},
        {"text": "x", "thoughtSignature": "S"},
    ]


def test_tools_choice_and_generation_config() -> None:
    noargs = ToolSpec(name="now", parameters={"type": "object", "properties": {}})
    req = request(
        user("go"),
        tools=(WEATHER, noargs),
        tool_choice=ToolChoice(ToolChoiceKind.TOOL, name="get_weather"),
        top_p=0.9,
        top_k=40,
        stop=("a", "b", "", "c", "d", "e", "f"),
    )
    body = encode_request(req, model="gemini-2.5-flash", stream=False)
    assert body["tools"][0]["functionDeclarations"][1] == {"name": "now"}
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert body["generationConfig"] == {"topP": 0.9, "topK": 40, "stopSequences": ["a", "b", "c", "d", "e"]}


@pytest.mark.parametrize(
    ("kind", "mode"),
    [(ToolChoiceKind.AUTO, "AUTO"), (ToolChoiceKind.NONE, "NONE"), (ToolChoiceKind.REQUIRED, "ANY")],
)
def test_tool_choice_modes(kind: ToolChoiceKind, mode: str) -> None:
    body = encode_request(request(user("go"), tools=(WEATHER,), tool_choice=ToolChoice(kind)), model="m", stream=False)
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_no_tool_config_without_tools() -> None:
    body = encode_request(request(user("go"), tool_choice=ToolChoice(ToolChoiceKind.NONE)), model="m", stream=False)
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("thinking", "model", "expected"),
    [
        (
            ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=50000),
            "gemini-2.5-pro",
            {"includeThoughts": True, "thinkingBudget": 32768},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=50000),
            "gemini-2.5-flash",
            {"includeThoughts": True, "thinkingBudget": 24576},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=100),
            "gemini-2.5-pro",
            {"includeThoughts": True, "thinkingBudget": 128},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=100),
            "gemini-2.5-flash-lite",
            {"includeThoughts": True, "thinkingBudget": 512},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, effort="medium"),
            "gemini-2.5-flash",
            {"includeThoughts": True, "thinkingBudget": 8192},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, effort="low"),
            "gemini-flash-latest",
            {"includeThoughts": True, "thinkingBudget": 1024},
        ),
        (ThinkingConfig(ThinkingMode.ADAPTIVE), "gemini-2.5-flash", {"includeThoughts": True, "thinkingBudget": -1}),
        (ThinkingConfig(ThinkingMode.DISABLED), "gemini-2.5-flash", {"thinkingBudget": 0}),
        (ThinkingConfig(ThinkingMode.DISABLED), "gemini-2.5-pro", {"thinkingBudget": 128, "includeThoughts": False}),
        (ThinkingConfig(ThinkingMode.ENABLED, effort="none"), "gemini-2.5-flash", {"thinkingBudget": 0}),
        (
            ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=4096),
            "gemini-3-pro-preview",
            {"includeThoughts": True, "thinkingLevel": "LOW"},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=4097),
            "gemini-3-pro-preview",
            {"includeThoughts": True, "thinkingLevel": "HIGH"},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, effort="minimal"),
            "gemini-3-flash-preview",
            {"includeThoughts": True, "thinkingLevel": "MINIMAL"},
        ),
        (
            ThinkingConfig(ThinkingMode.ENABLED, effort="medium"),
            "gemini-3-pro-preview",
            {"includeThoughts": True, "thinkingLevel": "HIGH"},
        ),
        (ThinkingConfig(ThinkingMode.ADAPTIVE), "gemini-3-pro-preview", {"includeThoughts": True}),
        (
            ThinkingConfig(ThinkingMode.DISABLED),
            "gemini-3-pro-preview",
            {"thinkingLevel": "LOW", "includeThoughts": False},
        ),
        (
            ThinkingConfig(ThinkingMode.DISABLED),
            "gemini-3-flash-preview",
            {"thinkingLevel": "MINIMAL", "includeThoughts": False},
        ),
    ],
)
def test_thinking_config(thinking: ThinkingConfig, model: str, expected: dict[str, object]) -> None:
    body = encode_request(request(user("go"), thinking=thinking), model=model, stream=False)
    assert body["generationConfig"]["thinkingConfig"] == expected


@pytest.mark.parametrize("model", ["gemini-2.0-flash", "gemma-3-27b-it"])
def test_no_thinking_config_for_models_without_thinking(model: str) -> None:
    body = encode_request(
        request(user("go"), thinking=ThinkingConfig(ThinkingMode.ENABLED, 2048)), model=model, stream=False
    )
    assert "generationConfig" not in body


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("  ", {}),
        ('{"a": 1}', {"a": 1}),
        ("[1, 2]", {"value": [1, 2]}),
        ("7", {"value": 7}),
        ('{"a": {"b": [1, "x', {"a": {"b": [1, "x"]}}),
        ('{"a": 1}}garbage', {"a": 1}),
        ("not json at all", {}),
        ("null", {}),
    ],
)
def test_parse_arguments(text: str, expected: dict[str, object]) -> None:
    assert parse_arguments(text) == expected


def test_tool_names_gemini_rejects_are_rewritten_and_restorable() -> None:
    tools = (ToolSpec(name="mcp/search files"), ToolSpec(name="1st"), ToolSpec(name="mcp_search_files"))
    req = request(user("go"), Message(Role.ASSISTANT, (ToolUsePart("c", "mcp/search files"),)), tools=tools)
    body = encode_request(req, model="gemini-2.5-flash", stream=False)
    wire = [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    assert wire == ["mcp_search_files", "_1st", "mcp_search_files_2"]
    assert body["contents"][1]["parts"][0]["functionCall"]["name"] == "mcp_search_files"
    assert tool_name_map(req) == {
        "mcp_search_files": "mcp/search files",
        "_1st": "1st",
        "mcp_search_files_2": "mcp_search_files",
    }


def test_results_are_paired_with_the_calls_before_them() -> None:
    calls = Message(
        Role.ASSISTANT,
        (ToolUsePart("c1", "first"), ToolUsePart("c2", "second"), ToolUsePart("c3", "third")),
    )
    req = request(
        user("go"),
        calls,
        result("c3", "three"),
        result("stray", "from nowhere"),
        result("c1", "one (old)"),
        result("c1", "one"),
        user("c2 never ran"),
    )
    contents = encode_request(req, model="gemini-2.5-flash", stream=False, call_ids=True)["contents"]
    assert contents[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "first", "response": {"result": "one"}, "id": "c1"}},
            {"functionResponse": {"name": "second", "response": {"error": "Tool call was interrupted."}, "id": "c2"}},
            {"functionResponse": {"name": "third", "response": {"result": "three"}, "id": "c3"}},
            {"text": "c2 never ran"},
        ],
    }
