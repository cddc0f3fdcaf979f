"""One apipod in front of one fake upstream of EACH kind (openai, anthropic, google_ai_studio, copilot,
antigravity, mock), for the suites that run the official SDKs of every client dialect (OpenAI Chat, Anthropic
Messages, OpenAI Responses, Gemini) against every upstream kind: test_responses_clients, test_gemini_clients,
test_dialect_matrix.

Every upstream kind has a plan of its own, ``p-<kind>`` (``PLANS``), routing to that upstream only, so a key on
that plan reaches exactly that fake. ``strict`` is the OpenAI plan with ``strict_models`` (unknown model -> 404).

The ``script_*`` helpers queue one answer in the fake's own wire format (streamed frames or a JSON body) with
usage numbers the tests then expect in the usage row; ``upstream_body`` and ``tool_results_sent`` read what the
fake received in the shape each vendor uses. The mock upstream cannot be scripted: it answers deterministically
(``adapters/upstreams/mock.py``: echo, a call of the first tool when the user text starts with ``"call "``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import attrs
import httpx
import openai
import orjson

from tests.fakes.fake_anthropic import FakeAnthropic, anthropic_frames
from tests.fakes.fake_antigravity import CLIENT_ID, CLIENT_SECRET, FakeAntigravity, envelope_frames
from tests.fakes.fake_copilot import GITHUB_TOKEN, TOKEN_PATH, FakeCopilot
from tests.fakes.fake_gemini import FakeGemini, error_body, gemini_frames
from tests.fakes.fake_openai import FakeOpenAI, openai_frames
from tests.fakes.scripted import Recorded, Reply, ScriptedUpstream, words
from tests.fakes.server import BackgroundServer
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

KINDS = ("openai", "anthropic", "google_ai_studio", "copilot", "antigravity", "mock")
PLANS = {kind: f"p-{kind}" for kind in KINDS}
UPSTREAM_MODELS = {
    "openai": "gpt-4o-up",
    "anthropic": "claude-up",
    "google_ai_studio": "gemini-2.5-flash",
    "copilot": "gpt-4.1",
    "antigravity": "gemini-3-flash",
    "mock": "mock-echo",
}
GEMINI_KEY = "AIza-matrix-key-0"
REFRESH_TOKEN = "1//0refresh-token-matrix"
STRICT = "strict"

Hook = Callable[[Recorded], Reply]


class Hooked(ScriptedUpstream):
    """A mixin: ``hooks`` are answers computed from the request (e.g. a call of whatever parameter name the
    gateway declared), used before the plain reply queue. Only for the routes where the fake would use its
    queue, so authentication and validation still run."""

    hooks: deque[Hook]
    _current: Recorded | None

    def hook(self, answer: Hook) -> None:
        self.hooks.append(answer)

    def respond(self, request: Recorded) -> Reply:
        self._current = request
        return super().respond(request)

    def scripted(self) -> Reply | None:
        if self.hooks and self._current is not None:
            return self.hooks.popleft()(self._current)
        return super().scripted()


class MatrixOpenAI(Hooked, FakeOpenAI):
    def __init__(self) -> None:
        super().__init__()
        self.hooks, self._current = deque(), None


class MatrixAnthropic(Hooked, FakeAnthropic):
    def __init__(self) -> None:
        super().__init__()
        self.hooks, self._current = deque(), None


class MatrixGemini(Hooked, FakeGemini):
    """FakeGemini plus ``:countTokens``, which the shared fake lacks, answering ``{"totalTokens": count_answer}``:
    today apipod counts locally, but a gateway forwarding the call to AI Studio must find the route."""

    def __init__(self) -> None:
        super().__init__(keys=[GEMINI_KEY])
        self.hooks, self._current = deque(), None
        self.count_answer = 42

    def respond(self, request: Recorded) -> Reply:
        if request.method == "POST" and request.path.endswith(":countTokens"):
            key = request.headers.get("x-goog-api-key") or request.query.get("key", [""])[0]
            if key != GEMINI_KEY:
                return Reply(status=400, body=error_body(400, "INVALID_ARGUMENT", "API key not valid."))
            return Reply(body={"totalTokens": self.count_answer})
        return super().respond(request)


@attrs.define
class Matrix:
    """The running gateway and its six fakes (``mock`` has none)."""

    gateway: ApipodProcess
    fakes: dict[str, ScriptedUpstream]
    clients: list[Any] = attrs.field(factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def oa(self) -> MatrixOpenAI:
        return self.fakes["openai"]  # type: ignore[return-value]

    @property
    def an(self) -> MatrixAnthropic:
        return self.fakes["anthropic"]  # type: ignore[return-value]

    @property
    def gm(self) -> MatrixGemini:
        return self.fakes["google_ai_studio"]  # type: ignore[return-value]

    @property
    def cp(self) -> FakeCopilot:
        return self.fakes["copilot"]  # type: ignore[return-value]

    @property
    def ag(self) -> FakeAntigravity:
        return self.fakes["antigravity"]  # type: ignore[return-value]

    def reset(self) -> None:
        self.clients.clear()
        for fake in self.fakes.values():
            fake.replies.clear()
            fake.requests.clear()
            fake.outcomes.clear()
            if isinstance(fake, Hooked):
                fake.hooks.clear()

    # -- keys and usage ------------------------------------------------------------------------------------
    def new_key(self, tier: str) -> tuple[str, str]:
        """A fresh key on plan ``tier``: (api key, key id)."""
        answer = httpx.post(
            f"{self.url}/admin/create-key", headers=self.gateway.admin, json={"name": "matrix", "tier": tier}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["api_key"]), str(answer.json()["id"])

    def usage_rows(self, key_id: str, count: int, *, settle: float = 0.15) -> list[dict[str, Any]]:
        """Exactly ``count`` usage rows of the key, oldest first."""
        rows = self.gateway.wait_usage(count, key_id=key_id)
        if settle:
            time.sleep(settle)
            rows = self.gateway.usage(key_id=key_id)
        assert len(rows) == count, rows
        return list(reversed(rows))

    def usage_row(self, key_id: str) -> dict[str, Any]:
        [row] = self.usage_rows(key_id, 1)
        return row

    # -- clients -------------------------------------------------------------------------------------------
    # The SDK clients are typed ``Any``, as in tests/integration/harness.py: their overloads and unions of 60 event
    # types add nothing to tests that assert values.
    def openai(self, key: str) -> Any:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=20)

    def anthropic(self, key: str) -> Any:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, timeout=20)

    def genai(self, key: str, *, api_version: str = "v1beta") -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=self.url, api_version=api_version, timeout=20_000)
        client = genai.Client(api_key=key, http_options=options)
        self.clients.append(client)  # a collected Client closes its transport under a live ``client.models``
        return client

    # -- what the upstream received ------------------------------------------------------------------------
    def generations(self, kind: str) -> list[Recorded]:
        """The fake's generation requests (no token exchanges, model lists, ...)."""
        fake = self.fakes[kind]
        paths = {
            "openai": ("/v1/chat/completions",),
            "anthropic": ("/v1/messages",),
            "copilot": ("/chat/completions", "/v1/messages"),
            "antigravity": ("/v1internal:generateContent", "/v1internal:streamGenerateContent"),
        }.get(kind)
        if kind == "google_ai_studio":
            return [r for r in fake.requests if r.method == "POST" and "Content" in r.path]
        assert paths is not None, kind
        return [r for r in fake.requests if r.method == "POST" and r.path in paths]

    def upstream_body(self, kind: str, index: int = -1) -> dict[str, Any]:
        """The body of one generation request; for antigravity, the inner Gemini request."""
        body = self.generations(kind)[index].body
        assert isinstance(body, dict), body
        return body["request"] if kind == "antigravity" else body


# -- start-up ---------------------------------------------------------------------------------------------------
def _catalog(urls: dict[str, str]) -> str:
    ag_extra = f'oauth_token_url = "{urls["antigravity"]}/token"\noauth_client_id = "{CLIENT_ID}"\n'
    ag_extra += f'oauth_client_secret = "{CLIENT_SECRET}"\n'
    cp_extra = f'token_url = "{urls["copilot"]}{TOKEN_PATH}"\n'
    providers = [
        provider("up-openai", "openai", urls["openai"] + "/v1"),
        provider("up-anthropic", "anthropic", urls["anthropic"]),
        provider("up-google_ai_studio", "google_ai_studio", urls["google_ai_studio"], accounts=[GEMINI_KEY]),
        provider("up-copilot", "copilot", urls["copilot"], accounts=[GITHUB_TOKEN], extra=cp_extra),
        provider("up-antigravity", "antigravity", urls["antigravity"], accounts=[REFRESH_TOKEN], extra=ag_extra),
        'name = "up-mock"\ntype = "mock"\n',
    ]
    models = [model(f"m-{kind}", f"up-{kind}", UPSTREAM_MODELS[kind]) for kind in KINDS]
    plans = [plan(PLANS[kind], {f"m-{kind}": 1}) for kind in KINDS]
    plans.append(plan(STRICT, {"m-openai": 1}, extra="strict_models = true\n"))
    return catalog(*providers, models=models, plans=plans)


def start_matrix(tmp: Path) -> Iterator[Matrix]:
    """A generator for a module-scoped fixture: the fakes on real sockets, one apipod, a warm-up request per
    upstream (token exchanges, model lists) so scripted answers go to the calls meant for them."""
    fakes: dict[str, ScriptedUpstream] = {
        "openai": MatrixOpenAI(),
        "anthropic": MatrixAnthropic(),
        "google_ai_studio": MatrixGemini(),
        "copilot": FakeCopilot(),
        "antigravity": FakeAntigravity({REFRESH_TOKEN: "proj-matrix"}),
    }
    servers = {kind: BackgroundServer(fake) for kind, fake in fakes.items()}
    try:
        urls = {kind: server.start() for kind, server in servers.items()}
        gateway = ApipodProcess(catalog=_catalog(urls), tmp=tmp).start()
        try:
            matrix = Matrix(gateway=gateway, fakes=fakes)
            for kind in KINDS:
                key, _ = matrix.new_key(PLANS[kind])
                answer = matrix.openai(key).chat.completions.create(
                    model="warm-up", messages=[{"role": "user", "content": "hi"}]
                )
                assert answer.choices[0].message.content, (kind, answer)
            matrix.reset()
            yield matrix
        finally:
            gateway.stop()
    finally:
        for server in servers.values():
            server.stop()


# -- scripting in each vendor's wire format ---------------------------------------------------------------------
@attrs.frozen
class Call:
    """One tool call the upstream makes."""

    name: str
    args: dict[str, Any]
    id: str = "call_matrix_1"

    @property
    def arguments(self) -> str:
        return orjson.dumps(self.args).decode()


def _halves(text: str) -> list[str]:
    middle = max(1, len(text) // 2)
    return [text[:middle], text[middle:]]


def _oa_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    head = {"id": "chatcmpl-matrix", "object": "chat.completion.chunk", "created": 1727346142, "model": "up"}
    return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}], **extra}


def _oa_usage(prompt: int, completion: int, reasoning: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def openai_stream(
    *, text: str = "", calls: tuple[Call, ...] = (), reasoning: str = "", usage: tuple[int, int] = (11, 5)
) -> list[bytes]:
    """An OpenAI Chat stream: reasoning_content, text, tool calls (arguments in two fragments), usage chunk."""
    chunks = [_oa_chunk({"role": "assistant", "content": ""})]
    chunks += [_oa_chunk({"reasoning_content": piece}) for piece in words(reasoning)] if reasoning else []
    chunks += [_oa_chunk({"content": piece}) for piece in words(text)] if text else []
    for n, call in enumerate(calls):
        start = {"index": n, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        chunks.append(_oa_chunk({"tool_calls": [start]}))
        chunks += [
            _oa_chunk({"tool_calls": [{"index": n, "function": {"arguments": piece}}]})
            for piece in _halves(call.arguments)
        ]
    chunks.append(_oa_chunk({}, "tool_calls" if calls else "stop"))
    chunks.append({**_oa_chunk({}), "choices": [], "usage": _oa_usage(*usage)})
    return openai_frames(chunks)


def copilot_stream(*, text: str = "", calls: tuple[Call, ...] = (), usage: tuple[int, int] = (11, 5)) -> list[bytes]:
    """Copilot's flavour: no usage chunk, the usage rides on the finish chunk."""
    frames = openai_stream(text=text, calls=calls, usage=usage)
    finish = orjson.loads(frames[-3].removeprefix(b"data: "))
    finish["usage"] = _oa_usage(*usage)
    return [*frames[:-3], b"data: " + orjson.dumps(finish) + b"\n\n", frames[-1]]


def openai_completion(
    *, text: str | None = None, calls: tuple[Call, ...] = (), usage: tuple[int, int] = (11, 5)
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls
        ]
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if calls else "stop"}
    return {
        "id": "chatcmpl-matrix",
        "object": "chat.completion",
        "created": 1727346142,
        "model": "up",
        "choices": [choice],
        "usage": _oa_usage(*usage),
    }


def anthropic_stream(
    *,
    text: str = "",
    calls: tuple[Call, ...] = (),
    thinking: str = "",
    signature: str = "c2lnbmF0dXJlLW1hdHJpeA==",  # real signatures are base64
    usage: tuple[int, int] = (11, 5),
) -> list[bytes]:
    message: dict[str, Any] = {
        "id": "msg_matrix",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": 1},
    }
    events: list[dict[str, Any]] = [{"type": "message_start", "message": message}]
    index = 0
    if thinking:
        events.append(
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}
        )
        events += [
            {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": p}}
            for p in words(thinking)
        ]
        events.append(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": signature}}
        )
        events.append({"type": "content_block_stop", "index": 0})
        index = 1
    if text:
        events.append({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})
        events += [
            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": p}}
            for p in words(text)
        ]
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    for call in calls:
        block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
        events.append({"type": "content_block_start", "index": index, "content_block": block})
        events += [
            {"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": p}}
            for p in _halves(call.arguments)
        ]
        events.append({"type": "content_block_stop", "index": index})
        index += 1
    stop = "tool_use" if calls else "end_turn"
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": usage[1]},
        }
    )
    events.append({"type": "message_stop"})
    return anthropic_frames(events)


def anthropic_message(
    *, text: str | None = None, calls: tuple[Call, ...] = (), usage: tuple[int, int] = (11, 5)
) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in calls]
    return {
        "id": "msg_matrix",
        "type": "message",
        "role": "assistant",
        "model": "claude-up",
        "content": content,
        "stop_reason": "tool_use" if calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }


def gemini_chunks(
    *, text: str = "", calls: tuple[Call, ...] = (), thought: str = "", usage: tuple[int, int] = (11, 5)
) -> list[dict[str, Any]]:
    """A Gemini stream: thought parts, text word by word, then the calls (one chunk) with the finish reason and
    usage on the last chunk."""
    parts: list[list[dict[str, Any]]] = []
    parts += [[{"text": p, "thought": True}] for p in words(thought)] if thought else []
    parts += [[{"text": p}] for p in words(text)] if text else []
    if calls:
        parts.append([{"functionCall": {"name": c.name, "args": c.args}} for c in calls])
    chunks: list[dict[str, Any]] = []
    for n, group in enumerate(parts, 1):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": group}, "index": 0}
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r-m"}
        if n == len(parts):
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = {
                "promptTokenCount": usage[0],
                "candidatesTokenCount": usage[1],
                "totalTokenCount": usage[0] + usage[1],
            }
        chunks.append(chunk)
    return chunks


def gemini_response(
    *, text: str = "", calls: tuple[Call, ...] = (), thought: str = "", usage: tuple[int, int] = (11, 5)
) -> dict[str, Any]:
    """The same answer as one non-streamed GenerateContentResponse."""
    chunks = gemini_chunks(text=text, calls=calls, thought=thought, usage=usage)
    merged = chunks[-1]
    merged["candidates"][0]["content"]["parts"] = [
        part for chunk in chunks for part in chunk["candidates"][0]["content"]["parts"]
    ]
    if text and not thought and not calls:
        merged["candidates"][0]["content"]["parts"] = [{"text": text}]
    return merged


def script_stream(
    matrix: Matrix, kind: str, *, text: str = "", calls: tuple[Call, ...] = (), usage: tuple[int, int] = (11, 5)
) -> None:
    """Queue one streamed answer on the fake of ``kind`` (nothing for mock: it cannot be scripted)."""
    if kind == "openai":
        matrix.oa.reply_sse(openai_stream(text=text, calls=calls, usage=usage))
    elif kind == "copilot":
        matrix.cp.reply_sse(copilot_stream(text=text, calls=calls, usage=usage))
    elif kind == "anthropic":
        matrix.an.reply_sse(anthropic_stream(text=text, calls=calls, usage=usage))
    elif kind == "google_ai_studio":
        matrix.gm.reply_sse(gemini_frames(gemini_chunks(text=text, calls=calls, usage=usage)))
    elif kind == "antigravity":
        matrix.ag.reply_sse(envelope_frames(gemini_chunks(text=text, calls=calls, usage=usage)))
    else:
        assert kind == "mock", kind


def script_reply(
    matrix: Matrix, kind: str, *, text: str = "", calls: tuple[Call, ...] = (), usage: tuple[int, int] = (11, 5)
) -> None:
    """Queue one non-streamed answer on the fake of ``kind``."""
    if kind in ("openai", "copilot"):
        matrix.fakes[kind].reply_json(openai_completion(text=text or None, calls=calls, usage=usage))
    elif kind == "anthropic":
        matrix.an.reply_json(anthropic_message(text=text or None, calls=calls, usage=usage))
    elif kind == "google_ai_studio":
        matrix.gm.reply_json(gemini_response(text=text, calls=calls, usage=usage))
    elif kind == "antigravity":
        matrix.ag.reply_response(gemini_response(text=text, calls=calls, usage=usage))
    else:
        assert kind == "mock", kind


# -- reading what the upstream received --------------------------------------------------------------------------
def tool_results_sent(kind: str, body: dict[str, Any]) -> list[tuple[str | None, str]]:
    """``(call id or function name, result text)`` of every tool result in an upstream request body."""
    found: list[tuple[str | None, str]] = []
    if kind in ("openai", "copilot"):
        for message in body.get("messages", []):
            if message.get("role") == "tool":
                content = message.get("content")
                text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
                found.append((message.get("tool_call_id"), text))
    elif kind == "anthropic":
        for message in body.get("messages", []):
            for block in message.get("content", []) if isinstance(message.get("content"), list) else []:
                if block.get("type") == "tool_result":
                    content = block.get("content")
                    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content or [])
                    found.append((block.get("tool_use_id"), text))
    elif kind in ("google_ai_studio", "antigravity"):
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                if "functionResponse" in part:
                    response = part["functionResponse"]
                    found.append((response.get("name"), orjson.dumps(response.get("response")).decode()))
    return found


def tool_calls_sent(kind: str, body: dict[str, Any]) -> list[tuple[str | None, str, dict[str, Any]]]:
    """``(call id, name, arguments)`` of every earlier assistant tool call replayed in an upstream request."""
    found: list[tuple[str | None, str, dict[str, Any]]] = []
    if kind in ("openai", "copilot"):
        for message in body.get("messages", []):
            for call in message.get("tool_calls") or []:
                found.append((call.get("id"), call["function"]["name"], orjson.loads(call["function"]["arguments"])))
    elif kind == "anthropic":
        for message in body.get("messages", []):
            for block in message.get("content", []) if isinstance(message.get("content"), list) else []:
                if block.get("type") == "tool_use":
                    found.append((block.get("id"), block["name"], block.get("input") or {}))
    elif kind in ("google_ai_studio", "antigravity"):
        for content in body.get("contents", []):
            for part in content.get("parts", []):
                if "functionCall" in part:
                    call = part["functionCall"]
                    found.append((call.get("id"), call["name"], call.get("args") or {}))
    return found


def declared_tools(kind: str, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool name -> JSON Schema of its parameters, as the upstream request declares them."""
    if kind in ("openai", "copilot"):
        return {t["function"]["name"]: t["function"].get("parameters") or {} for t in body.get("tools", [])}
    if kind == "anthropic":
        return {t["name"]: t.get("input_schema") or {} for t in body.get("tools", [])}
    if kind in ("google_ai_studio", "antigravity"):
        return {
            d["name"]: d.get("parametersJsonSchema") or d.get("parameters") or {}
            for tool in body.get("tools", [])
            for d in tool.get("functionDeclarations", [])
        }
    return {}


def sse_events(raw: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of an SSE body (``data:`` lines), in order."""
    events = []
    for frame in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(line[5:].strip() for line in frame.split(b"\n") if line.startswith(b"data:"))
        if data and data != b"[DONE]":
            events.append(orjson.loads(data))
    return events


def gemini_key_headers(key: str) -> dict[str, str]:
    return {"x-goog-api-key": key, "content-type": "application/json"}
