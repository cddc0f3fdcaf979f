"""Client ``messages`` -> canonical system prompt and messages.

System and developer messages are lifted, in order, into the system prompt (their position is lost, as
in every target dialect). Consecutive ``tool`` messages become one ``Role.TOOL`` message. Content part
types the canonical model cannot hold (``input_audio``, ``file``, future types) are left out: a
same-dialect upstream still receives them through ``ChatRequest.raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from apipod.dialects._fields import (
    FieldError,
    as_array,
    as_object,
    missing,
    optional_str,
    required_str,
    wrong_type,
)
from apipod.dialects.openai.mapping import parse_data_url, signature_of
from apipod.domain.chat import ImagePart, Message, Part, Role, TextPart, ThinkingPart, ToolResultPart, ToolUsePart

_CONTENT = "a string or an array of content parts"
_ROLES = "system, developer, user, assistant, tool"


class _Reader:
    """Decodes one ``messages`` array; state carries tool-call names forward to their results."""

    def __init__(self) -> None:
        self.system: list[TextPart] = []
        self.messages: list[Message] = []
        self._results: list[ToolResultPart] = []
        self._call_names: dict[str, str] = {}

    def read(self, item: object) -> None:
        message = as_object(item)
        role = message.get("role")
        if role is None:
            raise missing("role")
        if not isinstance(role, str):
            raise wrong_type("role", "a string", role)
        if role in ("system", "developer"):
            self.system.extend(TextPart(text) for text in _texts(_content(message, nullable=False)) if text)
            return
        if role == "tool":
            self._results.append(self._tool_result(message))
            return
        if role == "user":
            self._flush()
            self.messages.append(Message(Role.USER, _user_parts(_content(message, nullable=False))))
        elif role == "assistant":
            self._flush()
            self.messages.append(Message(Role.ASSISTANT, self._assistant_parts(message)))
        else:
            raise FieldError("role", f"unknown role '{role}'; expected one of {_ROLES}.")

    def finish(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if self._results:
            self.messages.append(Message(Role.TOOL, tuple(self._results)))
            self._results = []

    def _tool_result(self, message: Mapping[str, Any]) -> ToolResultPart:
        call_id = required_str(message, "tool_call_id")
        parts = _user_parts(_content(message, nullable=True))
        return ToolResultPart(call_id, parts, name=self._call_names.get(call_id))

    def _assistant_parts(self, message: Mapping[str, Any]) -> tuple[Part, ...]:
        parts: list[Part] = []
        reasoning = optional_str(message, "reasoning_content")
        opaque = optional_str(message, "reasoning_opaque")
        if reasoning or opaque:
            parts.append(ThinkingPart(reasoning or "", opaque or ""))
        content = _content(message, nullable=True)
        parts.extend(TextPart(text) for text in _texts(content, refusals=True) if text)
        calls = message.get("tool_calls")
        if calls is not None:
            for index, call in enumerate(as_array(calls, "tool_calls")):
                try:
                    part = _tool_call(as_object(call))
                except FieldError as error:
                    raise error.under(f"tool_calls[{index}]") from None
                self._call_names[part.id] = part.name
                parts.append(part)
        return tuple(parts)


def decode_messages(value: object) -> tuple[tuple[TextPart, ...], tuple[Message, ...]]:
    """``(system, messages)`` from the body's ``messages``. Raises ``FieldError`` (path under ``messages``)."""
    if value is None:
        raise missing("messages")
    items = as_array(value, "messages")
    if not items:
        raise FieldError("messages", "at least one message is required.")
    reader = _Reader()
    for index, item in enumerate(items):
        try:
            reader.read(item)
        except FieldError as error:
            raise error.under(f"messages[{index}]") from None
    reader.finish()
    return tuple(reader.system), tuple(reader.messages)


def _content(message: Mapping[str, Any], *, nullable: bool) -> str | list[Any] | None:
    if "content" not in message:
        if nullable:
            return None
        raise missing("content")
    content = message["content"]
    if content is None and nullable:
        return None
    if not isinstance(content, str | list):
        raise wrong_type("content", _CONTENT, content)
    return content


def _texts(content: str | list[Any] | None, *, refusals: bool = False) -> list[str]:
    """The texts of string-or-parts content that may hold only text (system, developer, assistant)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for index, item in enumerate(content):
        try:
            part = as_object(item)
            kind = required_str(part, "type")
            if kind == "text":
                texts.append(required_str(part, "text"))
            elif kind == "refusal" and refusals:
                texts.append(required_str(part, "refusal"))
        except FieldError as error:
            raise error.under(f"content[{index}]") from None
    return texts


def _user_parts(content: str | list[Any] | None) -> tuple[TextPart | ImagePart, ...]:
    if content is None:
        return ()
    if isinstance(content, str):
        return (TextPart(content),) if content else ()
    parts: list[TextPart | ImagePart] = []
    for index, item in enumerate(content):
        try:
            part = as_object(item)
            kind = required_str(part, "type")
            if kind == "text":
                parts.append(TextPart(required_str(part, "text")))
            elif kind == "image_url":
                parts.append(_image(part))
        except FieldError as error:
            raise error.under(f"content[{index}]") from None
    return tuple(parts)


def _image(part: Mapping[str, Any]) -> ImagePart:
    """``image_url`` as an object ``{url, detail?}`` or, from some clients, a bare string."""
    image = part.get("image_url")
    if isinstance(image, str):
        url, path = image, "image_url"
    else:
        try:
            url, path = required_str(as_object(image), "url"), "image_url.url"
        except FieldError as error:
            raise error.under("image_url") from None
    if url.startswith("data:"):
        parsed = parse_data_url(url)
        if parsed is None:
            raise FieldError(path, "a data URL must have the form 'data:<media type>;base64,<data>'.")
        return ImagePart(media_type=parsed[0], data=parsed[1])
    return ImagePart(url=url)


def _tool_call(call: Mapping[str, Any]) -> ToolUsePart:
    call_id = required_str(call, "id")
    kind = optional_str(call, "type")
    if kind is not None and kind != "function":
        raise FieldError("type", f"unsupported tool call type '{kind}'; expected 'function'.")
    try:
        function = as_object(call.get("function"))
        name = required_str(function, "name")
        arguments = function.get("arguments")
        if isinstance(arguments, Mapping):  # lenient: some clients send the object itself
            arguments = orjson.dumps(arguments).decode()
        elif arguments is None:
            arguments = "{}"
        elif not isinstance(arguments, str):
            raise wrong_type("arguments", "a JSON string", arguments)
    except FieldError as error:
        raise error.under("function") from None
    return ToolUsePart(id=call_id, name=name, arguments=arguments, signature=signature_of(call))
