"""The google-genai SDK against apipod's Gemini-native surface (``/v1beta/models/{model}:generateContent``,
``:streamGenerateContent``, ``:countTokens``, the model list) over real sockets, in front of an OpenAI, an
Anthropic and a Google AI Studio fake (tests/integration/http/matrix_support.py): text, function calling over two
turns with automatic function calling off, parallel calls, thought parts, JSON output, errors in Google's envelope,
the three ways to pass the key, and the JSON-array stream without ``alt=sse``.

With the Google AI Studio upstream the dialect is the same on both sides: the upstream must receive the client's
body fields as sent (``parametersJsonSchema`` untouched). docs/protocols/gemini-cli.md is the wire reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from google.genai import errors, types

from tests.fakes.fake_gemini import gemini_frames
from tests.integration.http.matrix_support import (
    PLANS,
    STRICT,
    UPSTREAM_MODELS,
    Call,
    Matrix,
    anthropic_stream,
    gemini_chunks,
    openai_stream,
    script_reply,
    script_stream,
    start_matrix,
    tool_calls_sent,
    tool_results_sent,
)

UPSTREAMS = ("openai", "anthropic", "google_ai_studio")
MODEL = "gemini-2.5-flash"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name"}},
    "required": ["city"],
    "additionalProperties": False,
}
DECLARATION = types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city", parameters_json_schema=SCHEMA
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)
PARIS = Call("get_weather", {"city": "Paris"}, id="call_paris")
TOKYO = Call("get_weather", {"city": "Tokyo"}, id="call_tokyo")
PERSON = types.Schema(
    type=types.Type.OBJECT,
    properties={"name": types.Schema(type=types.Type.STRING), "age": types.Schema(type=types.Type.INTEGER)},
    required=["name", "age"],
)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    yield from start_matrix(tmp_path_factory.mktemp("gemini-clients"))


@pytest.fixture(autouse=True)
def _clean(matrix: Matrix) -> None:
    matrix.reset()


def _row(matrix: Matrix, key_id: str, expected: tuple[int, int]) -> None:
    row = matrix.usage_row(key_id)
    assert row["status"] == "success", row
    assert (row["input_tokens"], row["output_tokens"]) == expected, row


def _parts(chunks: list[Any]) -> list[Any]:
    return [p for c in chunks if c.candidates for p in (c.candidates[0].content.parts or [])]


def _text(parts: list[Any]) -> str:
    return "".join(p.text for p in parts if p.text and not p.thought)


def _usage(response: Any) -> tuple[int, int, int]:
    meta = response.usage_metadata
    return meta.prompt_token_count, meta.candidates_token_count, meta.total_token_count


# -- text ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", UPSTREAMS)
def test_text_non_streamed(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    script_reply(matrix, kind, text=f"Hello from {kind}.", usage=(14, 4))
    config = types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.25, max_output_tokens=100)
    response = matrix.genai(key).models.generate_content(model=MODEL, contents="Say hello", config=config)
    assert response.text == f"Hello from {kind}."
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert _usage(response) == (14, 4, 18)
    sent = matrix.upstream_body(kind)
    if kind == "openai":
        assert sent["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ]
        assert sent["temperature"] == 0.25
        assert 100 in (sent.get("max_completion_tokens"), sent.get("max_tokens"))
    elif kind == "anthropic":
        assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])
        assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}] or sent[
            "messages"
        ] == [{"role": "user", "content": "Say hello"}]
        assert (sent["temperature"], sent["max_tokens"]) == (0.25, 100)
    else:
        assert sent["contents"] == [{"role": "user", "parts": [{"text": "Say hello"}]}]
        assert sent["systemInstruction"]["parts"] == [{"text": "Be brief."}]
        assert sent["generationConfig"] == {"temperature": 0.25, "maxOutputTokens": 100}
    _row(matrix, key_id, (14, 4))


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_text_streamed(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    script_stream(matrix, kind, text="One two three four five.", usage=(20, 5))
    chunks = list(matrix.genai(key).models.generate_content_stream(model=MODEL, contents="Count"))
    assert len(chunks) >= 3  # streamed, not one block
    assert _text(_parts(chunks)) == "One two three four five."
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert _usage(chunks[-1]) == (20, 5, 25)
    if kind == "google_ai_studio":
        assert matrix.gm.last.query.get("alt") == ["sse"]
    _row(matrix, key_id, (20, 5))


# -- function calling ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", UPSTREAMS)
def test_function_calling_over_two_turns(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    client = matrix.genai(key)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[DECLARATION])], automatic_function_calling=NO_AFC
    )
    history: list[Any] = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]
    script_reply(matrix, kind, calls=(PARIS,), usage=(40, 8))
    first = client.models.generate_content(model=MODEL, contents=history, config=config)
    [call] = first.function_calls
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    if kind != "google_ai_studio":
        assert call.id == PARIS.id  # the upstream's call id is kept for the answer
    sent = matrix.upstream_body(kind)
    if kind == "google_ai_studio":
        [tool] = sent["tools"]
        [declared] = tool["functionDeclarations"]
        # as the SDK sent it: the SDK spells it parameters_json_schema (proto JSON takes both spellings)
        schema = declared.get("parametersJsonSchema", declared.get("parameters_json_schema"))
        assert schema == SCHEMA, declared  # untouched: additionalProperties kept, no OpenAPI cleaning
        assert "parameters" not in declared
    elif kind == "openai":
        assert sent["tools"][0]["function"]["parameters"] == SCHEMA
    else:
        assert sent["tools"][0]["input_schema"] == SCHEMA

    history.append(first.candidates[0].content)
    history.append(
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(id=call.id, name=call.name, response={"temp": "21 C"})
                )
            ],
        )
    )
    script_reply(matrix, kind, text="It is 21 C in Paris.", usage=(60, 7))
    second = client.models.generate_content(model=MODEL, contents=history, config=config)
    assert second.text == "It is 21 C in Paris."
    sent = matrix.upstream_body(kind)
    [(_, name, args)] = tool_calls_sent(kind, sent)
    assert (name, args) == ("get_weather", {"city": "Paris"})
    [(_, result)] = tool_results_sent(kind, sent)
    assert "21 C" in result
    if kind == "google_ai_studio":  # same dialect: the turns as the client sent them
        assert sent["contents"][2]["parts"][0]["functionResponse"]["response"] == {"temp": "21 C"}
    rows = matrix.usage_rows(key_id, 2)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(40, 8), (60, 7)]


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_parallel_function_calls_streamed(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    client = matrix.genai(key)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[DECLARATION])], automatic_function_calling=NO_AFC
    )
    history: list[Any] = [types.Content(role="user", parts=[types.Part(text="Weather in Paris and Tokyo?")])]
    script_stream(matrix, kind, calls=(PARIS, TOKYO), usage=(45, 16))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=history, config=config))
    parts = _parts(chunks)
    calls = [p.function_call for p in parts if p.function_call]
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP

    history.append(types.Content(role="model", parts=parts))
    history.append(
        types.Content(
            role="user",
            parts=[
                types.Part(function_response=types.FunctionResponse(id=c.id, name=c.name, response={"temp": t}))
                for c, t in zip(calls, ("21 C", "9 C"), strict=True)
            ],
        )
    )
    script_stream(matrix, kind, text="Paris is warmer.", usage=(70, 4))
    answer = list(client.models.generate_content_stream(model=MODEL, contents=history, config=config))
    assert _text(_parts(answer)) == "Paris is warmer."
    sent = matrix.upstream_body(kind)
    replayed = tool_calls_sent(kind, sent)
    assert [(n, a) for _, n, a in replayed] == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})]
    results = tool_results_sent(kind, sent)
    assert ["21 C" in r for _, r in results] == [True, False] and "9 C" in results[1][1]
    if kind != "google_ai_studio":
        assert [ref for ref, _ in results] == [i for i, _, _ in replayed]  # each result answers its call
    rows = matrix.usage_rows(key_id, 2)
    assert [(r["input_tokens"], r["output_tokens"]) for r in rows] == [(45, 16), (70, 4)]


# -- thinking ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", UPSTREAMS)
def test_thought_parts_with_include_thoughts(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    thought, answer = "Two and two make four.", "4"
    if kind == "openai":
        matrix.oa.reply_sse(openai_stream(reasoning=thought, text=answer, usage=(12, 9)))
    elif kind == "anthropic":
        matrix.an.reply_sse(anthropic_stream(thinking=thought, text=answer, usage=(12, 9)))
    else:
        matrix.gm.reply_sse(gemini_frames(gemini_chunks(thought=thought, text=answer, usage=(12, 9))))
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024)
    )
    chunks = list(matrix.genai(key).models.generate_content_stream(model=MODEL, contents="2+2?", config=config))
    parts = _parts(chunks)
    assert "".join(p.text for p in parts if p.thought) == thought
    assert _text(parts) == answer
    first_answer = next(n for n, p in enumerate(parts) if not p.thought)
    assert all(p.thought for p in parts[:first_answer]) and first_answer > 0  # thoughts come first
    sent = matrix.upstream_body(kind)
    if kind == "google_ai_studio":  # as sent (the SDK writes include_thoughts, the CLI includeThoughts)
        thinking = sent["generationConfig"]["thinkingConfig"]
        assert thinking in (
            {"includeThoughts": True, "thinkingBudget": 1024},
            {"include_thoughts": True, "thinking_budget": 1024},
        )
    elif kind == "anthropic":
        assert sent["thinking"]["type"] in ("enabled", "adaptive"), sent["thinking"]
    _row(matrix, key_id, (12, 9))


# -- JSON output ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", UPSTREAMS)
def test_json_output(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    script_reply(matrix, kind, text='{"name": "Ada", "age": 36}', usage=(22, 11))
    config = types.GenerateContentConfig(response_mime_type="application/json", response_schema=PERSON)
    response = matrix.genai(key).models.generate_content(model=MODEL, contents="Ada is 36.", config=config)
    assert orjson.loads(response.text) == {"name": "Ada", "age": 36}
    sent = matrix.upstream_body(kind)
    if kind == "openai":
        form = sent["response_format"]
        assert form["type"] == "json_schema", form
        schema = form["json_schema"]["schema"]
        assert schema["type"] == "object" and set(schema["properties"]) == {"name", "age"}, schema
        assert schema["properties"]["age"]["type"] == "integer"
        assert not {"property_ordering", "propertyOrdering"} & set(schema), schema  # Gemini's own keyword
    elif kind == "google_ai_studio":
        config_sent = sent["generationConfig"]
        assert config_sent["responseMimeType"] == "application/json"
        assert config_sent["responseSchema"]["required"] == ["name", "age"]
    else:  # Anthropic has no JSON mode: the schema reaches it in the system prompt (or a forced tool)
        text = orjson.dumps(sent).decode()
        assert '\\"age\\"' in text or '"age"' in text, sent
        assert "property_ordering" not in text and "propertyOrdering" not in text, sent
    _row(matrix, key_id, (22, 11))


def test_sdk_snake_case_schemas_become_json_schema(matrix: Matrix) -> None:
    """google-genai 3.x writes ``Schema`` fields in snake case (``any_of``, ``min_length``, ``property_ordering``),
    which Google accepts as proto JSON: the gateway must read both spellings into plain JSON Schema."""
    key, key_id = matrix.new_key(PLANS["openai"])
    schema = types.Schema(
        type=types.Type.OBJECT,
        properties={
            "a": types.Schema(type=types.Type.STRING, min_length=2, max_length=5),
            "b": types.Schema(
                any_of=[types.Schema(type=types.Type.INTEGER, minimum=1), types.Schema(type=types.Type.STRING)]
            ),
            "c": types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING), min_items=1),
        },
        required=["a"],
    )
    expected = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "minLength": 2, "maxLength": 5},
            "b": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]},
            "c": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["a"],
    }
    script_reply(matrix, "openai", text='{"a": "xy"}', usage=(9, 3))
    config = types.GenerateContentConfig(
        tools=[
            types.Tool(function_declarations=[types.FunctionDeclaration(name="f", description="d", parameters=schema)])
        ],
        automatic_function_calling=NO_AFC,
        response_mime_type="application/json",
        response_schema=schema,
    )
    matrix.genai(key).models.generate_content(model=MODEL, contents="hi", config=config)
    sent = matrix.upstream_body("openai")
    assert sent["tools"][0]["function"]["parameters"] == expected
    assert sent["response_format"]["json_schema"]["schema"] == expected
    _row(matrix, key_id, (9, 3))


def test_same_dialect_body_reaches_google_as_sent(matrix: Matrix) -> None:
    """Gemini client, Gemini upstream: the body goes through as the client wrote it (the model is the catalog's)."""
    key, key_id = matrix.new_key(PLANS["google_ai_studio"])
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [{"text": "<session_context>workspace</session_context>"}, {"text": "List files"}],
            },
            {
                "role": "model",
                "parts": [
                    {
                        "functionCall": {"name": "list_directory", "args": {"dir_path": "."}},
                        "thoughtSignature": "c2lnbg==",
                    }
                ],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "list_directory", "response": {"output": "a.txt"}}}],
            },
        ],
        "systemInstruction": {"parts": [{"text": "You are a CLI agent."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "list_directory",
                        "description": "Lists a directory.",
                        "parametersJsonSchema": {
                            "type": "object",
                            "properties": {"dir_path": {"type": "string", "minLength": 1}},
                            "required": ["dir_path"],
                            "additionalProperties": False,
                        },
                    }
                ]
            }
        ],
        "generationConfig": {
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 512},
        },
    }
    matrix.gm.reply_sse(gemini_frames(gemini_chunks(text="a.txt", usage=(70, 2))))
    answer = httpx.post(
        f"{matrix.url}/v1beta/models/{MODEL}:streamGenerateContent",
        params={"alt": "sse"},
        headers={"x-goog-api-key": key},
        json=body,
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert matrix.upstream_body("google_ai_studio") == body
    assert matrix.gm.last.path == f"/v1beta/models/{UPSTREAM_MODELS['google_ai_studio']}:streamGenerateContent"
    _row(matrix, key_id, (70, 2))


# -- token counting and models -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", UPSTREAMS)
def test_count_tokens(matrix: Matrix, kind: str) -> None:
    key, _ = matrix.new_key(PLANS[kind])
    text = "How many tokens is this sentence?"
    counted = matrix.genai(key).models.count_tokens(model=MODEL, contents=text)
    assert counted.total_tokens is not None and 0 < counted.total_tokens <= len(text)


def test_models_list_and_get(matrix: Matrix) -> None:
    key, _ = matrix.new_key(PLANS["openai"])
    client = matrix.genai(key)
    names = [m.name for m in client.models.list()]
    assert f"models/{PLANS['openai']}" in names, names
    got = client.models.get(model=PLANS["openai"])
    assert got.name == f"models/{PLANS['openai']}"
    for prefix in ("/v1beta", "/v1"):
        answer = httpx.get(f"{matrix.url}{prefix}/models/{PLANS['openai']}", headers={"x-goog-api-key": key})
        assert answer.status_code == 200, (prefix, answer.text)
        assert answer.json()["name"] == f"models/{PLANS['openai']}"
        listed = httpx.get(f"{matrix.url}{prefix}/models", headers={"x-goog-api-key": key})
        assert listed.status_code == 200, (prefix, listed.text)
        assert f"models/{PLANS['openai']}" in [m["name"] for m in listed.json()["models"]], listed.json()


# -- errors --------------------------------------------------------------------------------------------------------
def test_unknown_model_is_404_not_found(matrix: Matrix) -> None:
    key, _ = matrix.new_key(STRICT)
    with pytest.raises(errors.ClientError) as caught:
        matrix.genai(key).models.generate_content(model="no-such-model", contents="hi")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert "no-such-model" in (caught.value.message or "")
    assert matrix.generations("openai") == []


def test_bad_key_is_401_unauthenticated(matrix: Matrix) -> None:
    with pytest.raises(errors.ClientError) as caught:
        matrix.genai("not-a-key").models.generate_content(model=MODEL, contents="hi")
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")


def test_google_error_envelope_on_the_wire(matrix: Matrix) -> None:
    answer = httpx.post(
        f"{matrix.url}/v1beta/models/{MODEL}:generateContent",
        headers={"x-goog-api-key": "not-a-key"},
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
    )
    assert answer.status_code == 401
    assert set(answer.json()["error"]) >= {"code", "message", "status"}
    assert answer.json()["error"]["code"] == 401


def test_malformed_body_is_400_invalid_argument(matrix: Matrix) -> None:
    key, _ = matrix.new_key(PLANS["openai"])
    for content in (b"{not json", b'{"contents": 5}', b"{}"):
        answer = httpx.post(
            f"{matrix.url}/v1beta/models/{MODEL}:generateContent",
            headers={"x-goog-api-key": key, "content-type": "application/json"},
            content=content,
        )
        assert answer.status_code == 400, (content, answer.text)
        assert answer.json()["error"]["status"] == "INVALID_ARGUMENT", answer.text
    assert matrix.generations("openai") == []


# -- keys and raw transports ---------------------------------------------------------------------------------------
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize("how", ["query", "bearer", "header"])
def test_key_by_query_bearer_or_header(matrix: Matrix, how: str) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    script_reply(matrix, "openai", text="Keyed.", usage=(3, 1))
    params = {"key": key} if how == "query" else {}
    headers = {"authorization": f"Bearer {key}"} if how == "bearer" else {}
    headers |= {"x-goog-api-key": key} if how == "header" else {}
    answer = httpx.post(
        f"{matrix.url}/v1beta/models/{MODEL}:generateContent", params=params, headers=headers, json=BODY, timeout=20
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["candidates"][0]["content"]["parts"] == [{"text": "Keyed."}]
    _row(matrix, key_id, (3, 1))


@pytest.mark.parametrize("kind", UPSTREAMS)
def test_stream_without_alt_sse_is_one_json_array(matrix: Matrix, kind: str) -> None:
    key, key_id = matrix.new_key(PLANS[kind])
    script_stream(matrix, kind, text="Array of chunks here.", usage=(8, 4))
    answer = httpx.post(
        f"{matrix.url}/v1beta/models/{MODEL}:streamGenerateContent",
        headers={"x-goog-api-key": key},
        json=BODY,
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    chunks = orjson.loads(answer.content)  # valid JSON as a whole
    assert isinstance(chunks, list) and len(chunks) >= 2, chunks
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "Array of chunks here."
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == 8
    _row(matrix, key_id, (8, 4))


def test_sse_frames_on_the_wire(matrix: Matrix) -> None:
    key, _ = matrix.new_key(PLANS["anthropic"])
    script_stream(matrix, "anthropic", text="Framed.", usage=(2, 1))
    answer = httpx.post(
        f"{matrix.url}/v1beta/models/{MODEL}:streamGenerateContent",
        params={"alt": "sse"},
        headers={"x-goog-api-key": key},
        json=BODY,
        timeout=20,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    assert b"[DONE]" not in answer.content and b"event:" not in answer.content
    frames = [f for f in answer.content.replace(b"\r\n", b"\n").split(b"\n\n") if f.strip()]
    assert all(f.startswith(b"data: ") for f in frames), frames
    assert orjson.loads(frames[-1][6:])["candidates"][0]["finishReason"] == "STOP"


def test_v1_path_serves_the_same(matrix: Matrix) -> None:
    key, key_id = matrix.new_key(PLANS["openai"])
    script_reply(matrix, "openai", text="Version one.", usage=(4, 2))
    response = matrix.genai(key, api_version="v1").models.generate_content(model=MODEL, contents="hi")
    assert response.text == "Version one."
    _row(matrix, key_id, (4, 2))


def test_upstream_failure_mid_stream_is_a_bare_error_object(matrix: Matrix) -> None:
    """gemini-cli.md §6: after the first byte, the error is Google's envelope written on its own, without ``data:``
    (SSE), or as the last element of the JSON array; the SDK raises it as a ServerError."""
    key, key_id = matrix.new_key(PLANS["openai"])
    frames = openai_stream(text="one two three four five six seven", usage=(6, 7))
    matrix.oa.reply_sse(frames, cut_after=4)
    answer = httpx.post(
        f"{matrix.url}/v1beta/models/{MODEL}:streamGenerateContent",
        params={"alt": "sse"},
        headers={"x-goog-api-key": key},
        json=BODY,
        timeout=20,
    )
    assert answer.status_code == 200  # the stream had started
    *chunks, last = [f for f in answer.content.replace(b"\r\n", b"\n").split(b"\n\n") if f.strip()]
    assert chunks and all(f.startswith(b"data: ") for f in chunks), chunks
    error = orjson.loads(last)["error"]
    assert (error["code"], error["status"]) == (503, "UNAVAILABLE") and error["message"], last

    matrix.oa.reply_sse(frames, cut_after=4)
    answer = httpx.post(
        f"{matrix.url}/v1beta/models/{MODEL}:streamGenerateContent",
        headers={"x-goog-api-key": key},
        json=BODY,
        timeout=20,
    )
    array = orjson.loads(answer.content)  # still valid JSON
    assert "candidates" in array[0] and array[-1]["error"]["status"] == "UNAVAILABLE", array

    matrix.oa.reply_sse(frames, cut_after=4)
    with pytest.raises(errors.ServerError) as caught:
        list(matrix.genai(key).models.generate_content_stream(model=MODEL, contents="hi"))
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")
    assert [r["status"] for r in matrix.usage_rows(key_id, 3)] == ["upstream_error"] * 3
