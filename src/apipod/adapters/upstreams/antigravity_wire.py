"""The Cloud Code request envelope and the body rules Antigravity adds to plain Gemini
(docs/protocols/antigravity.md §5, §7).

The body itself comes from the Gemini codec (or, for a Gemini client and a Gemini model, is the client's
own); this module adjusts it for Antigravity (stricter tool schemas, ``systemInstruction`` with a role, a
``sessionId``) and, for Claude models, for the Claude rules of §5.1: VALIDATED tool calling, call ids on
``functionCall``/``functionResponse``, only signed thinking in the history, snake_case ``thinkingConfig``
with ``maxOutputTokens`` above the budget, a JSON instruction instead of a JSON mode. The codec never emits
``cache_control`` or ``safetySettings`` and a forwarded body leaves them out, so there is nothing to strip.
Answers arrive as ``{"response": {...}, "traceId": ...}`` and are unwrapped before decoding.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects import gemini
from apipod.dialects.anthropic.upstream_request import json_instruction
from apipod.dialects.gemini.request import forwarded_body, forwards_raw
from apipod.domain.chat import ChatRequest, Role, ThinkingConfig, ThinkingMode
from apipod.domain.stream import StreamEvent

Json = dict[str, Any]

# What a Gemini client's body is forwarded with: Cloud Code refuses safetySettings (the reference tools strip
# them) and cannot know an AI Studio cachedContent.
FORWARDED_FIELDS = ("contents", "systemInstruction", "tools", "toolConfig", "generationConfig")

CLAUDE_THINKING_BETA = "interleaved-thinking-2025-05-14"
DEFAULT_CLAUDE_BUDGET = 8192  # a thinking model asked for no budget: without one Claude thinks in <thinking> tags
_MIN_CLAUDE_BUDGET = 1024
_OUTPUT_HEADROOM = 8192  # maxOutputTokens must exceed the budget; the reference tools add this much
_EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576, "xhigh": 32768}
# Schema keywords Antigravity answers 400 to although plain Gemini takes them (§5); kept as a description hint.
_STRICT_DROP = (
    "default",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
)
_PLACEHOLDER = {
    "type": "object",
    "properties": {"reason": {"type": "string", "description": "Why the tool is being called (optional)."}},
}


def is_claude(model: str) -> bool:
    return "claude" in model.lower()


def is_claude_thinking(model: str) -> bool:
    name = model.lower()
    return "claude" in name and "thinking" in name


def build_body(request: ChatRequest, *, model: str, stream: bool) -> Json:
    """The ``request`` member of the envelope: the Gemini body with Antigravity's rules applied.

    A Gemini client's own body is forwarded for Gemini models (without ``safetySettings`` and
    ``cachedContent``, which Cloud Code does not take); for Claude models it is translated like any other
    dialect, since Claude's rules (call ids, only its own signatures) need the canonical conversation. The
    client's values are shared, never changed: whatever is adjusted is copied first."""
    claude = is_claude(model)
    if not claude and forwards_raw(request):
        body = forwarded_body(request, FORWARDED_FIELDS)
    else:
        body = gemini.encode_request(request, model=model, stream=stream, call_ids=claude, forward=False)
    system = body.get("systemInstruction")
    if isinstance(system, Mapping):
        body["systemInstruction"] = {**system, "role": "user"}
    tools = body.get("tools")
    if isinstance(tools, list):
        body["tools"] = [_strict_tool(tool, claude=claude) for tool in tools]
    if claude:
        _claude_rules(body, request, model)
    body["sessionId"] = session_id(request)
    return body


def tool_names(request: ChatRequest, model: str) -> dict[str, str]:
    """Wire name -> client name for decoding the answer; nothing to restore when the client's body went as it is."""
    if not is_claude(model) and forwards_raw(request):
        return {}
    return gemini.tool_name_map(request)


def envelope(body: Json, *, model: str, project: str, now_ms: int) -> Json:
    """The ``v1internal`` wrapper around one Gemini body (a fresh ``requestId`` per call)."""
    if "image" in model.lower():
        request_type, request_id = "image_gen", f"image_gen/{now_ms}/{uuid.uuid4()}/12"
    else:
        request_type, request_id = "agent", f"agent-{uuid.uuid4()}"
    return {
        "project": project,
        "model": model,
        "userAgent": "antigravity",
        "requestType": request_type,
        "requestId": request_id,
        "request": body,
    }


def unwrap(answer: Any) -> Any:
    """The Gemini response inside an envelope; an answer without ``response`` is used as it is."""
    if isinstance(answer, Mapping):
        inner = answer.get("response")
        if isinstance(inner, Mapping):
            return inner
    return answer


def session_id(request: ChatRequest) -> str:
    """Stable per conversation so the backend can reuse its caches: ``-`` and the decimal of the first
    8 bytes of the SHA-256 of the first user text, top bit cleared; random when there is no user text."""
    for message in request.messages:
        if message.role is Role.USER:
            text = message.text()
            if text:
                digest = hashlib.sha256(text.encode()).digest()
                return f"-{int.from_bytes(digest[:8], 'big') & 0x7FFF_FFFF_FFFF_FFFF}"
    return f"-{uuid.uuid4().int >> 65}"


class EnvelopeDecoder:
    """The Gemini ``StreamDecoder`` behind Antigravity's per-chunk envelope."""

    __slots__ = ("_inner",)

    def __init__(self, inner: gemini.StreamDecoder) -> None:
        self._inner = inner

    def feed(self, event: str | None, data: bytes) -> list[StreamEvent]:
        if not data or data.isspace():
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return self._inner.feed(event, data)  # the codec reports the malformed chunk
        return self._inner.feed_json(unwrap(chunk))

    def close(self) -> list[StreamEvent]:
        return self._inner.close()


def _strict_tool(tool: Any, *, claude: bool) -> Any:
    declarations = tool.get("functionDeclarations") if isinstance(tool, Mapping) else None
    if not isinstance(declarations, list):
        return tool
    return {
        **tool,
        "functionDeclarations": [
            _strict_declaration(d, claude=claude) if isinstance(d, Mapping) else d for d in declarations
        ],
    }


def _strict_declaration(declaration: Mapping[str, Any], *, claude: bool) -> Json:
    # NOTE: the codec's cleaned schemas are cached and shared between requests: build new dicts, never mutate.
    parameters = declaration.get("parameters")
    if isinstance(parameters, Mapping):
        return {**declaration, "parameters": _strict_schema(parameters)}
    if claude:  # VALIDATED mode needs at least one property
        return {**declaration, "parameters": _PLACEHOLDER}
    return dict(declaration)


def _strict_schema(node: Mapping[str, Any]) -> Json:
    out: Json = {}
    hints: list[str] = []
    for key, value in node.items():
        if key in _STRICT_DROP:
            hints.append(f"{key}: {orjson.dumps(value).decode()}")
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {name: _strict_schema(sub) if isinstance(sub, Mapping) else sub for name, sub in value.items()}
        elif key == "items" and isinstance(value, Mapping):
            out[key] = _strict_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out[key] = [_strict_schema(b) if isinstance(b, Mapping) else b for b in value]
        else:
            out[key] = value
    if hints:
        text = "; ".join(hints)
        current = out.get("description")
        out["description"] = f"{current} ({text})" if isinstance(current, str) and current else f"({text})"
    return out


def _claude_rules(body: Json, request: ChatRequest, model: str) -> None:
    if body.get("tools"):
        body["toolConfig"] = {"functionCallingConfig": {"mode": "VALIDATED"}}
    signed_loop = True
    for content in body.get("contents") or ():
        parts: list[Json] = []
        for part in content.get("parts") or ():
            if part.get("thought"):
                if not part.get("thoughtSignature"):
                    continue  # Claude rejects unsigned thinking
            else:
                part.pop("thoughtSignature", None)  # a Gemini signature means nothing to Claude
            parts.append(part)
        content["parts"] = parts or [{"text": "."}]
        if content.get("role") == "model" and any("functionCall" in p for p in parts):
            signed_loop = any(p.get("thought") for p in parts)
    config: Json = body.get("generationConfig") or {}
    config.pop("thinkingConfig", None)
    # Claude has no JSON mode: the response format becomes an instruction (as toward Anthropic itself).
    config.pop("responseMimeType", None)
    config.pop("responseJsonSchema", None)
    if request.response_format is not None and (instruction := json_instruction(request.response_format)):
        system = body.get("systemInstruction") or {"role": "user", "parts": []}
        body["systemInstruction"] = {**system, "parts": [*system.get("parts", ()), {"text": instruction}]}
    budget = claude_budget(request.thinking, model)
    # docs/protocols/translation.md §5.4(4): a tool loop whose last call turn carries no signed thinking cannot continue
    # with thinking on (Claude answers 400), so thinking is switched off for this request.
    if budget is not None and signed_loop:
        config["thinkingConfig"] = {"include_thoughts": True, "thinking_budget": budget}
        limit = config.get("maxOutputTokens")
        if not isinstance(limit, int) or limit <= budget:
            config["maxOutputTokens"] = budget + _OUTPUT_HEADROOM
        config.pop("topK", None)
        if config.get("temperature", 1) != 1:
            del config["temperature"]
        if config.get("topP", 1) < 0.95:
            del config["topP"]
    if config:
        body["generationConfig"] = config
    else:
        body.pop("generationConfig", None)


def claude_budget(thinking: ThinkingConfig | None, model: str) -> int | None:
    """The thinking budget for a Claude model, or None for no thinking. Only ``*-thinking`` ids think."""
    if not is_claude_thinking(model):
        return None
    if thinking is None:
        return DEFAULT_CLAUDE_BUDGET
    effort = (thinking.effort or "").lower()
    if thinking.mode is ThinkingMode.DISABLED or effort == "none":
        return None
    if thinking.budget_tokens:
        return max(thinking.budget_tokens, _MIN_CLAUDE_BUDGET)
    return _EFFORT_BUDGET.get(effort, DEFAULT_CLAUDE_BUDGET)
