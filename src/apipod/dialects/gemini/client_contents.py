"""A Gemini client's ``contents`` -> canonical messages (docs/protocols/gemini-cli.md §3.2, §3.4, §4).

The inverse of ``contents.Contents`` (which builds ``contents`` for an upstream):
- a ``model`` turn is an assistant message; a ``user`` (or legacy ``function``) turn holding ``functionResponse``
  parts becomes a ``tool`` message with those results, followed by a ``user`` message with the rest;
- media right after a ``functionResponse`` belongs to that result (the Gemini CLI sends a tool's binary output
  as an ``inlineData`` part placed just after its response); only images are modelled: any other media type
  becomes a short text note, so an upstream that takes only text and images still gets a valid request;
- calls and results pair by id when the client gave ids, else by name and order within the step; a call
  without an id gets a stable one from its position (``gemini_call_<content>_<part>``) and its result the same;
- ``thoughtSignature`` on a call is the call's signature; on a thought part it signs that thought; on a plain
  text part it becomes a text-less ThinkingPart right after the text (where the upstream-side decoder puts it);
  the skip sentinel is dropped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import orjson

from apipod.dialects._fields import FieldError, as_array, as_object, optional_bool, optional_str, required_str
from apipod.dialects.gemini.contents import SKIP_SIGNATURE
from apipod.domain.chat import ImagePart, Message, Part, Role, TextPart, ThinkingPart, ToolResultPart, ToolUsePart

_ROLES = {"user": Role.USER, "function": Role.USER, "model": Role.ASSISTANT}
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")


@functools.cache
def _snake(camel: str) -> str:
    return _SNAKE.sub("_", camel).lower()


def key_of(obj: Mapping[str, Any], camel: str) -> str:
    """The spelling of a field this object uses: proto-JSON accepts ``systemInstruction`` and
    ``system_instruction`` alike (docs/protocols/gemini.md §1)."""
    if camel in obj:
        return camel
    snake = _snake(camel)
    return snake if snake in obj else camel


def get(obj: Mapping[str, Any], camel: str) -> Any:
    return obj.get(key_of(obj, camel))


@attrs.define
class _Call:
    name: str
    id: str
    given: bool  # the client sent this id


class Conversation:
    """Decodes ``contents`` one turn at a time, keeping the calls of the last model turn to pair results with."""

    __slots__ = ("_pending", "messages")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self._pending: list[_Call] = []

    def add_all(self, contents: Any) -> None:
        for index, content in enumerate(as_array(contents)):
            try:
                self.add(index, as_object(content))
            except FieldError as error:
                raise error.under(f"[{index}]") from None

    def add(self, index: int, content: Mapping[str, Any]) -> None:
        role_name = optional_str(content, "role") or "user"
        role = _ROLES.get(role_name)
        if role is None:
            raise FieldError("role", f"unknown role '{role_name}': expected 'user' or 'model'.")
        raw = content.get("parts")
        parts = as_array(raw, "parts") if raw is not None else ()
        if role is Role.ASSISTANT:
            self._model(index, parts)
        else:
            self._user(index, parts)

    def _model(self, index: int, parts: Sequence[Any]) -> None:
        out: list[Part] = []
        calls: list[_Call] = []
        for number, raw in enumerate(parts):
            try:
                self._model_part(as_object(raw), f"gemini_call_{index}_{number}", out, calls)
            except FieldError as error:
                raise error.under(f"parts[{number}]") from None
        self._pending = calls  # results answer the model turn right before them
        if out:
            self.messages.append(Message(Role.ASSISTANT, tuple(out)))

    def _model_part(self, part: Mapping[str, Any], fallback_id: str, out: list[Part], calls: list[_Call]) -> None:
        signature = _signature(part)
        call = get(part, "functionCall")
        if call is not None:
            key = key_of(part, "functionCall")
            try:
                use = _tool_use(as_object(call), fallback_id, signature)
            except FieldError as error:
                raise error.under(key) from None
            calls.append(_Call(use.name, use.id, use.id != fallback_id))
            out.append(use)
            return
        text = optional_str(part, "text")
        if optional_bool(part, "thought"):
            last = out[-1] if out else None
            if isinstance(last, ThinkingPart) and not last.signature:  # streamed pieces of one thought
                out[-1] = ThinkingPart(last.text + (text or ""), signature or "")
            elif text or signature:
                out.append(ThinkingPart(text or "", signature or ""))
            return
        if text is None:
            media = _media(part)
            if media is not None:
                out.append(media)
            elif signature:  # a part holding only a signature
                out.append(ThinkingPart("", signature))
            return
        if text:
            last = out[-1] if out else None
            if isinstance(last, TextPart):  # streamed pieces of one answer
                out[-1] = TextPart(last.text + text)
            else:
                out.append(TextPart(text))
        if signature:
            out.append(ThinkingPart("", signature))

    def _user(self, index: int, parts: Sequence[Any]) -> None:
        results: list[ToolResultPart] = []
        others: list[Part] = []
        attach = False  # media right after a functionResponse joins that result
        for number, raw in enumerate(parts):
            try:
                part = as_object(raw)
                response = get(part, "functionResponse")
                if response is not None:
                    key = key_of(part, "functionResponse")
                    try:
                        results.append(self._result(as_object(response), f"gemini_call_{index}_{number}"))
                    except FieldError as error:
                        raise error.under(key) from None
                    attach = True
                    continue
                text = optional_str(part, "text")
                if text is not None:
                    attach = False
                    if text:
                        others.append(TextPart(text))
                    continue
                media = _media(part)
            except FieldError as error:
                raise error.under(f"parts[{number}]") from None
            if media is None:
                continue
            if attach:
                last = results[-1]
                results[-1] = attrs.evolve(last, content=(*last.content, media))
            else:
                others.append(media)
        if results:
            self.messages.append(Message(Role.TOOL, tuple(results)))
        if others:
            self.messages.append(Message(Role.USER, tuple(others)))

    def _result(self, response: Mapping[str, Any], fallback_id: str) -> ToolResultPart:
        name = required_str(response, "name")
        given = optional_str(response, "id") or None
        value = response.get("response")
        if value is None:
            value = {}
        is_error = isinstance(value, Mapping) and len(value) == 1 and "error" in value
        return ToolResultPart(
            tool_use_id=self._pair(name, given, fallback_id),
            content=(TextPart(orjson.dumps(value).decode()),),
            is_error=is_error,
            name=name,
        )

    def _pair(self, name: str, given: str | None, fallback_id: str) -> str:
        """The id of the call this result answers: the same id, else the first open call of that name whose
        id apipod made up, else the client's id (or a made-up one) as it stands."""
        pending = self._pending
        if given is not None:
            for number, call in enumerate(pending):
                if call.id == given:
                    del pending[number]
                    return given
        for number, call in enumerate(pending):
            if call.name == name and (given is None or not call.given):
                del pending[number]
                return call.id
        return given or fallback_id


def _signature(part: Mapping[str, Any]) -> str | None:
    signature = optional_str(part, key_of(part, "thoughtSignature"))
    return None if not signature or signature == SKIP_SIGNATURE else signature


def _tool_use(call: Mapping[str, Any], fallback_id: str, signature: str | None) -> ToolUsePart:
    name = required_str(call, "name")
    args = call.get("args")
    if args is None:
        args = {}
    elif not isinstance(args, Mapping):
        raise FieldError("args", "expected an object.")
    return ToolUsePart(
        id=optional_str(call, "id") or fallback_id,
        name=name,
        arguments=orjson.dumps(args).decode(),
        signature=signature,
    )


def _media(part: Mapping[str, Any]) -> ImagePart | TextPart | None:
    """``inlineData`` / ``fileData`` as an image, a note for other media, or None for a part apipod does not
    model (``executableCode``, ``codeExecutionResult``, an empty part)."""
    inline = get(part, "inlineData")
    if inline is not None:
        key = key_of(part, "inlineData")
        try:
            data = as_object(inline)
            mime = optional_str(data, key_of(data, "mimeType")) or ""
            payload = required_str(data, "data")
        except FieldError as error:
            raise error.under(key) from None
        return ImagePart(media_type=mime, data=payload) if mime.startswith("image/") else _omitted(mime)
    file = get(part, "fileData")
    if file is not None:
        key = key_of(part, "fileData")
        try:
            data = as_object(file)
            mime = optional_str(data, key_of(data, "mimeType")) or ""
            uri = required_str(data, key_of(data, "fileUri"))
        except FieldError as error:
            raise error.under(key) from None
        if not mime or mime.startswith("image/"):
            return ImagePart(media_type=mime, url=uri)
        return _omitted(mime, uri)
    return None


def _omitted(mime: str, uri: str = "") -> TextPart:
    where = f" at {uri}" if uri else ""
    return TextPart(f"[{mime or 'binary'} content{where} omitted: only text and images are supported here]")
