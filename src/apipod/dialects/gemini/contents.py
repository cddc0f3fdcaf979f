"""The canonical conversation -> Gemini ``contents``
(docs/protocols/gemini.md §2.1-2.2, docs/protocols/translation.md §1-5).

Gemini pairs calls and results by position and rejects a turn whose result count differs from the calls
before it, so the shape matters more than anywhere else:
- consecutive turns of one role are merged (every result of a step in one ``user`` turn);
- the results of a step come first, in the order of its calls; a call left without a result (an
  interrupted run) gets a synthetic error result, a result matching none of the calls is dropped, a
  repeated result keeps its last version (docs/protocols/translation.md §4.4);
- a result names the *function*, looked up from its call's id;
- thought signatures go back on the part they came on; on Gemini 3 a model turn with calls but no
  signature gets the documented skip sentinel on its first call (docs/protocols/gemini.md §5).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from apipod.dialects.gemini.arguments import parse_arguments
from apipod.dialects.gemini.names import ToolNames
from apipod.domain.chat import ImagePart, Message, Role, TextPart, ThinkingPart, ToolResultPart, ToolUsePart

SKIP_SIGNATURE = "skip_thought_signature_validator"
INTERRUPTED = "Tool call was interrupted."

Json = dict[str, Any]


class _Turn:
    __slots__ = ("calls", "parts", "results", "role")

    def __init__(self, role: str) -> None:
        self.role = role
        self.parts: list[Json] = []  # everything but function responses
        self.calls: list[tuple[str, str]] = []  # model turn: (call id, wire name) in order
        self.results: dict[str, Json] = {}  # user turn: call id -> functionResponse part


class Contents:
    """Builds ``contents`` message by message; ``system`` collects in-place system turns."""

    def __init__(self, names: ToolNames, *, sentinel: bool, call_ids: bool) -> None:
        self._names = names
        self._sentinel = sentinel
        self._call_ids = call_ids
        self._call_names: dict[str, str] = {}  # tool call id -> wire function name, over the whole history
        self._turns: list[_Turn] = []
        self.system: list[Json] = []

    def add(self, message: Message) -> None:
        if message.role is Role.SYSTEM:
            self.system.extend({"text": p.text} for p in message.parts if isinstance(p, TextPart) and p.text)
        elif message.role is Role.ASSISTANT:
            self._add_model(message)
        else:
            self._add_user(message)

    def contents(self) -> list[Json]:
        out: list[Json] = []
        previous: _Turn | None = None
        for turn in self._turns:
            if turn.role == "model":
                out.append({"role": "model", "parts": turn.parts})
            elif previous is not None and previous.calls:
                results = [
                    turn.results.get(cid) or self._result(name, cid, {"error": INTERRUPTED})
                    for cid, name in previous.calls
                ]
                out.append({"role": "user", "parts": results + turn.parts})
            else:
                out.append({"role": "user", "parts": [*turn.results.values(), *turn.parts]})
            previous = turn
        if out and out[0]["role"] == "model":
            out.insert(0, {"role": "user", "parts": [{"text": "."}]})
        return out

    def _turn(self, role: str) -> _Turn:
        if not self._turns or self._turns[-1].role != role:
            self._turns.append(_Turn(role))
        return self._turns[-1]

    def _add_user(self, message: Message) -> None:
        parts: list[Json] = []
        results: list[tuple[str, Json]] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                if part.text:
                    parts.append({"text": part.text})
            elif isinstance(part, ImagePart):
                image = _image(part)
                if image is not None:
                    parts.append(image)
            elif isinstance(part, ToolResultPart):
                results.append((part.tool_use_id, self._response(part)))
                parts.extend(i for i in (_image(p) for p in part.content if isinstance(p, ImagePart)) if i)
        if not parts and not results:
            return
        turn = self._turn("user")
        turn.results.update(results)
        turn.parts.extend(parts)

    def _add_model(self, message: Message) -> None:
        parts: list[Json] = []
        calls: list[tuple[str, str]] = []
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
                calls.append((part.id, name))
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
        if not parts:
            return
        if self._sentinel and first_call is not None and not signed_call:
            first_call["thoughtSignature"] = SKIP_SIGNATURE
        turn = self._turn("model")
        turn.parts.extend(parts)
        turn.calls.extend(calls)

    def _response(self, part: ToolResultPart) -> Json:
        name = self._call_names.get(part.tool_use_id)
        if name is None:
            name = self._names.wire(part.name) if part.name else part.tool_use_id
        text = part.text()
        response: Any = None
        if part.is_error:
            response = {"error": text}
        elif text[:1] == "{" or (text[:1].isspace() and text.lstrip()[:1] == "{"):
            try:
                response = orjson.loads(text)
            except orjson.JSONDecodeError:
                response = None
        if not isinstance(response, dict):
            response = {"result": text}
        return self._result(name, part.tool_use_id, response)

    def _result(self, name: str, call_id: str, response: Json) -> Json:
        result: Json = {"name": name, "response": response}
        if self._call_ids:
            result["id"] = call_id
        return {"functionResponse": result}


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
