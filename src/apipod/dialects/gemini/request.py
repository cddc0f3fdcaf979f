"""Canonical ChatRequest -> Gemini ``generateContent`` body (gemini.md §2, translation.md §1-5).

Gemini pairs calls and results by position, so the shape matters more than anywhere else: consecutive
turns of one role are merged (all results of a step in one ``user`` turn, results first), a result names
its *function* (looked up from the call's id), thought signatures go back on the part they came on, and on
Gemini 3 a model turn with calls but no signature gets the documented skip sentinel.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from apipod.dialects.gemini.names import ToolNames
from apipod.dialects.gemini.schema import clean_parameters
from apipod.dialects.gemini.thinking import is_gemini3, thinking_config
from apipod.domain.chat import (
    ChatRequest,
    ImagePart,
    Message,
    Role,
    TextPart,
    ThinkingPart,
    ToolChoiceKind,
    ToolResultPart,
    ToolUsePart,
)

SKIP_SIGNATURE = "skip_thought_signature_validator"
_MAX_STOP = 5
_MODES = {
    ToolChoiceKind.AUTO: "AUTO",
    ToolChoiceKind.NONE: "NONE",
    ToolChoiceKind.REQUIRED: "ANY",
    ToolChoiceKind.TOOL: "ANY",
}

Json = dict[str, Any]


def encode_request(request: ChatRequest, *, model: str, stream: bool, call_ids: bool = False) -> Json:
    """The body for ``models/{model}:generateContent`` (``stream`` only changes the URL, not the body).

    ``call_ids`` also sends ``functionCall.id`` / ``functionResponse.id`` (Claude behind Antigravity pairs
    by id; AI Studio does not need them)."""
    del stream
    names = ToolNames(request)
    encoder = _Contents(names, sentinel=is_gemini3(model), call_ids=call_ids)
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
    return config


class _Contents:
    """Builds ``contents`` turn by turn, merging same-role neighbours."""

    def __init__(self, names: ToolNames, *, sentinel: bool, call_ids: bool) -> None:
        self._names = names
        self._sentinel = sentinel
        self._call_ids = call_ids
        self._call_names: dict[str, str] = {}  # tool call id -> wire function name
        # (role, head, tail): a user turn keeps function responses in head, everything else in tail
        self._turns: list[tuple[str, list[Json], list[Json]]] = []
        self.system: list[Json] = []

    def add(self, message: Message) -> None:
        if message.role is Role.SYSTEM:
            self.system.extend({"text": p.text} for p in message.parts if isinstance(p, TextPart) and p.text)
            return
        if message.role is Role.ASSISTANT:
            parts = self._model_parts(message)
            if parts:
                if self._turns and self._turns[-1][0] == "model":
                    self._turns[-1][1].extend(parts)
                else:
                    self._turns.append(("model", parts, []))
            return
        head: list[Json] = []
        tail: list[Json] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                if part.text:
                    tail.append({"text": part.text})
            elif isinstance(part, ImagePart):
                image = _image(part)
                if image is not None:
                    tail.append(image)
            elif isinstance(part, ToolResultPart):
                head.append(self._response(part))
                tail.extend(i for i in map(_image, _images(part)) if i is not None)
        if not head and not tail:
            return
        if self._turns and self._turns[-1][0] == "user":
            self._turns[-1][1].extend(head)
            self._turns[-1][2].extend(tail)
        else:
            self._turns.append(("user", head, tail))

    def contents(self) -> list[Json]:
        turns = [{"role": role, "parts": head + tail if tail else head} for role, head, tail in self._turns]
        if turns and turns[0]["role"] == "model":
            turns.insert(0, {"role": "user", "parts": [{"text": "."}]})
        return turns

    def _model_parts(self, message: Message) -> list[Json]:
        parts: list[Json] = []
        pending: str | None = None  # a signature that came alone (a signed empty text part) looking for a home
        first_call: Json | None = None
        signed_call = False
        for part in message.parts:
            out: Json | None = None
            if isinstance(part, TextPart):
                if part.text:
                    out = {"text": part.text}
            elif isinstance(part, ThinkingPart):
                if part.text:
                    out = {"text": part.text, "thought": True}
                    if part.signature:
                        out["thoughtSignature"] = part.signature
                elif part.signature:
                    last = parts[-1] if parts else None
                    if last is not None and "text" in last and "thoughtSignature" not in last:
                        last["thoughtSignature"] = part.signature
                    else:
                        pending = part.signature
            elif isinstance(part, ToolUsePart):
                name = self._names.wire(part.name)
                self._call_names[part.id] = name
                call: Json = {"name": name, "args": parse_arguments(part.arguments)}
                if self._call_ids:
                    call["id"] = part.id
                out = {"functionCall": call}
                if part.signature:
                    out["thoughtSignature"] = part.signature
                    signed_call = True
                if first_call is None:
                    first_call = out
            elif isinstance(part, ImagePart):
                out = _image(part)
            if out is None:
                continue
            if pending is not None and "text" in out and "thoughtSignature" not in out:
                out["thoughtSignature"] = pending
                pending = None
            parts.append(out)
        if self._sentinel and first_call is not None and not signed_call:
            first_call["thoughtSignature"] = SKIP_SIGNATURE
        return parts

    def _response(self, part: ToolResultPart) -> Json:
        name = self._call_names.get(part.tool_use_id)
        if name is None:
            name = self._names.wire(part.name) if part.name else part.tool_use_id
        text = part.text()
        response: Any = None
        if part.is_error:
            response = {"error": text}
        elif text[:1] == "{" or text.lstrip()[:1] == "{":
            try:
                response = orjson.loads(text)
            except orjson.JSONDecodeError:
                response = None
        if not isinstance(response, dict):
            response = {"result": text}
        result: Json = {"name": name, "response": response}
        if self._call_ids:
            result["id"] = part.tool_use_id
        return {"functionResponse": result}


def _images(part: ToolResultPart) -> list[ImagePart]:
    return [p for p in part.content if isinstance(p, ImagePart)]


def _image(part: ImagePart) -> Json | None:
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data}}
    url = part.url
    if not url:
        return None
    if url.startswith("data:"):
        header, sep, payload = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not payload:
            return None
        return {"inlineData": {"mimeType": mime or part.media_type or "image/png", "data": payload}}
    mime = part.media_type or mimetypes.guess_type(url)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def parse_arguments(text: str) -> Json:
    """A call's JSON arguments as the object Gemini wants: ``{}`` for nothing, a light repair for cut-off
    JSON, ``{"value": x}`` around a non-object, ``{}`` when nothing can be saved (never fail the request)."""
    if not text or text.isspace():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = _repair(text)
    if isinstance(value, dict):
        return value
    return {} if value is None else {"value": value}


def _repair(text: str) -> Any:
    """Cut trailing garbage after the top-level value, or close what a truncated text left open."""
    stack: list[str] = []
    in_string = escaped = False
    for index, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
            if not stack:
                candidate = text[: index + 1]
                break
    else:
        candidate = text.rstrip().rstrip(",") + ('"' if in_string else "") + "".join(reversed(stack))
    try:
        return orjson.loads(candidate)
    except orjson.JSONDecodeError:
        return None
