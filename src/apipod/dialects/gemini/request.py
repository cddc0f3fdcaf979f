"""Canonical ChatRequest -> Gemini ``generateContent`` body
(docs/protocols/gemini.md §2, docs/protocols/translation.md §1-5).

The conversation itself is built by ``contents.Contents``; this module adds the system instruction, the
tool declarations (schemas cleaned, names Gemini accepts), the tool config and the generation config
(``responseMimeType`` + ``responseJsonSchema`` for a ``response_format``).

A Gemini client's own body (``dialect == "gemini"`` with ``raw``) is forwarded instead of translated: its
request fields go as they are (``parametersJsonSchema`` unchanged, thought signatures the client got from
Gemini included); see ``forwarded_body``.
"""

from __future__ import annotations

from typing import Any

from apipod.dialects.gemini.contents import Contents
from apipod.dialects.gemini.names import ToolNames
from apipod.dialects.gemini.schema import clean_parameters
from apipod.dialects.gemini.thinking import is_gemini3, thinking_config
from apipod.domain.chat import ChatRequest, ResponseFormat, ResponseFormatKind, ToolChoiceKind

_MAX_STOP = 5
_MODES = {
    ToolChoiceKind.AUTO: "AUTO",
    ToolChoiceKind.NONE: "NONE",
    ToolChoiceKind.REQUIRED: "ANY",
    ToolChoiceKind.TOOL: "ANY",
}

# The GenerateContentRequest fields a Gemini client's body is forwarded with (``model`` is in the URL).
FORWARDED_FIELDS = (
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
)
JSON_MIME_TYPE = "application/json"

Json = dict[str, Any]


def forwards_raw(request: ChatRequest) -> bool:
    """True when ``request`` is a Gemini client's own body, to be forwarded rather than translated."""
    return request.dialect == "gemini" and request.raw is not None


def forwarded_body(request: ChatRequest, fields: tuple[str, ...] = FORWARDED_FIELDS) -> Json:
    """The client's request fields in a new top-level dict (the values themselves are shared, never changed)."""
    raw = request.raw or {}
    return {name: raw[name] for name in fields if raw.get(name) is not None}


def encode_request(
    request: ChatRequest, *, model: str, stream: bool, call_ids: bool = False, forward: bool = True
) -> Json:
    """The body for ``models/{model}:generateContent`` (``stream`` only changes the URL, not the body).

    ``call_ids`` also sends ``functionCall.id`` / ``functionResponse.id`` (Claude behind Antigravity pairs
    by id; AI Studio does not need them). ``forward=False`` translates a Gemini client's body too (when the
    model behind the upstream is not Gemini)."""
    del stream
    if forward and forwards_raw(request):
        return forwarded_body(request)
    names = ToolNames(request)
    encoder = Contents(names, sentinel=is_gemini3(model), call_ids=call_ids)
    for message in request.messages:
        encoder.add(message)
    system = [{"text": p.text} for p in request.system if p.text] + encoder.system
    body: Json = {"contents": encoder.contents()}
    if system:
        body["systemInstruction"] = {"parts": system}
    declarations = [_declaration(tool.name, tool.description, tool.parameters, names) for tool in request.tools]
    if declarations:
        body["tools"] = [{"functionDeclarations": declarations}]
        choice = request.tool_choice
        if choice is not None:
            calling: Json = {"mode": _MODES[choice.kind]}
            if choice.kind is ToolChoiceKind.TOOL and choice.name:
                calling["allowedFunctionNames"] = [names.wire(choice.name)]
            body["toolConfig"] = {"functionCallingConfig": calling}
    config = _generation_config(request, model)
    if config:
        body["generationConfig"] = config
    return body


def _declaration(name: str, description: str, parameters: Any, names: ToolNames) -> Json:
    declaration: Json = {"name": names.wire(name)}
    if description:
        declaration["description"] = description
    cleaned = clean_parameters(parameters)
    if cleaned is not None:
        declaration["parameters"] = cleaned
    return declaration


def _generation_config(request: ChatRequest, model: str) -> Json:
    config: Json = {}
    if request.max_output_tokens is not None:
        config["maxOutputTokens"] = request.max_output_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.top_k is not None:
        config["topK"] = request.top_k
    stops = [s for s in request.stop if s][:_MAX_STOP]
    if stops:
        config["stopSequences"] = stops
    if request.thinking is not None:
        thinking = thinking_config(request.thinking, model)
        if thinking is not None:
            config["thinkingConfig"] = thinking
    if request.response_format is not None:
        config.update(response_format_config(request.response_format))
    return config


def response_format_config(spec: ResponseFormat) -> Json:
    """``responseMimeType`` and, with a schema, ``responseJsonSchema``: plain JSON Schema, taken as it is
    (``responseSchema`` would need the OpenAPI subset and lose what cleaning drops)."""
    if spec.kind is ResponseFormatKind.TEXT:
        return {}
    config: Json = {"responseMimeType": JSON_MIME_TYPE}
    if spec.kind is ResponseFormatKind.JSON_SCHEMA and spec.schema:
        config["responseJsonSchema"] = dict(spec.schema)
    return config
