"""A Responses ``input`` -> canonical system prompt and messages (docs/protocols/openai-responses.md §3).

- ``instructions`` and the leading ``system``/``developer`` messages form the system prompt, in order; one that
  comes later in the history stays in place as a ``Role.SYSTEM`` message (the canonical model's in-place system
  turn; upstream codecs lift or rewrite it).
- Consecutive assistant-side items (``reasoning``, assistant ``message``, ``function_call``,
  ``custom_tool_call``) make one assistant message; consecutive ``*_output`` items one ``tool`` message.
- Item ``id``s and ``status`` are ignored; a call and its output are paired by ``call_id`` only.
- Item types the canonical model cannot hold (``item_reference``, ``compaction``, hosted-tool calls, ...) are
  left out: a same-dialect upstream still receives them through ``ChatRequest.raw``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from apipod.dialects._fields import FieldError, as_array, as_object, missing, optional_str, required_str, wrong_type
from apipod.dialects.openai.mapping import parse_data_url
from apipod.dialects.responses.reasoning_tags import read_tag
from apipod.dialects.responses.tool_names import flat_name
from apipod.domain.chat import (
    ImagePart,
    Message,
    Part,
    RedactedThinkingPart,
    Role,
    TextPart,
    ThinkingPart,
    ToolResultPart,
    ToolUsePart,
)

_CONTENT = "a string or an array of content parts"
_ROLES = "user, assistant, system, developer"
_ASSISTANT_ITEMS = frozenset({"reasoning", "function_call", "custom_tool_call"})
_OUTPUT_ITEMS = frozenset({"function_call_output", "custom_tool_call_output"})


class InputReader:
    """Decodes one ``input`` array; state carries call names forward to their outputs."""

    def __init__(self, system: list[TextPart]) -> None:
        self.system = system
        self.messages: list[Message] = []
        self.origins: set[str] = set()
        self._role: Role | None = None  # of the message being gathered in ``_parts``
        self._parts: list[Part] = []
        self._call_names: dict[str, str] = {}

    def read(self, value: object) -> None:
        item = as_object(value)
        kind = item.get("type")
        if kind is None or kind == "message":
            self._message(item)
        elif not isinstance(kind, str):
            raise wrong_type("type", "a string", kind)
        elif kind in _ASSISTANT_ITEMS:
            self._gather(Role.ASSISTANT, self._assistant_item(kind, item))
        elif kind in _OUTPUT_ITEMS:
            self._gather(Role.TOOL, (self._output(item),))
        # other item types: nothing canonical to say (see the module docstring)

    def finish(self) -> None:
        self._flush()

    def _gather(self, role: Role, parts: Sequence[Part]) -> None:
        if role is not self._role:
            self._flush()
            self._role = role
        self._parts.extend(parts)

    def _flush(self) -> None:
        if self._role is not None and self._parts:
            self.messages.append(Message(self._role, tuple(self._parts)))
        self._role = None
        self._parts = []

    def _message(self, item: Mapping[str, Any]) -> None:
        role = item.get("role")
        if role is None:
            raise missing("role")
        if not isinstance(role, str):
            raise wrong_type("role", "a string", role)
        content = _content(item)
        if role in ("system", "developer"):
            texts = [TextPart(text) for text in _texts(content, "input_text") if text]
            if not self.messages and self._role is None:
                self.system.extend(texts)
            elif texts:
                self._flush()
                self.messages.append(Message(Role.SYSTEM, tuple(texts)))
        elif role == "user":
            self._flush()
            self.messages.append(Message(Role.USER, _user_parts(content)))
        elif role == "assistant":
            self._gather(Role.ASSISTANT, [TextPart(text) for text in _texts(content, "output_text") if text])
        else:
            raise FieldError("role", f"unknown role '{role}'; expected one of {_ROLES}.")

    def _assistant_item(self, kind: str, item: Mapping[str, Any]) -> tuple[Part, ...]:
        if kind == "reasoning":
            part = _reasoning(item)
            if part is None:
                return ()
            if isinstance(part, RedactedThinkingPart) or part.signature:
                self.origins.add(part.origin)
            return (part,)
        call_id = required_str(item, "call_id")
        name = flat_name(optional_str(item, "namespace"), required_str(item, "name"))
        self._call_names[call_id] = name
        if kind == "custom_tool_call":
            arguments = orjson.dumps({"input": required_str(item, "input")}).decode()
        else:
            arguments = _arguments(item)
        return (ToolUsePart(id=call_id, name=name, arguments=arguments),)

    def _output(self, item: Mapping[str, Any]) -> ToolResultPart:
        call_id = required_str(item, "call_id")
        output = item.get("output")
        if output is None:
            raise missing("output")
        if not isinstance(output, str | list):
            raise wrong_type("output", _CONTENT, output)
        try:
            parts = _user_parts(output)
        except FieldError as error:
            raise error.under("output") from None
        return ToolResultPart(call_id, parts, name=self._call_names.get(call_id))


def decode_input(value: object, system: list[TextPart]) -> tuple[tuple[Message, ...], frozenset[str]]:
    """``(messages, signed origins)`` from the body's ``input``; leading system text is appended to ``system``.
    Raises ``FieldError`` (path under ``input``)."""
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        return (Message(Role.USER, (TextPart(value),)),), frozenset()
    items = as_array(value, "input")
    reader = InputReader(system)
    for index, item in enumerate(items):
        try:
            reader.read(item)
        except FieldError as error:
            raise error.under(f"input[{index}]") from None
    reader.finish()
    return tuple(reader.messages), frozenset(reader.origins)


def _content(item: Mapping[str, Any]) -> str | Sequence[Any]:
    content = item.get("content")
    if content is None:
        raise missing("content")
    if not isinstance(content, str | list):
        raise wrong_type("content", _CONTENT, content)
    return content


def _texts(content: str | Sequence[Any], kind: str) -> list[str]:
    """The texts of content that may hold only text: ``input_text`` / ``output_text`` parts (either spelling
    is accepted, as OpenAI does for replayed items), and ``refusal`` parts."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for index, value in enumerate(content):
        try:
            part = as_object(value)
            part_kind = required_str(part, "type")
            if part_kind in ("input_text", "output_text", kind):
                texts.append(required_str(part, "text"))
            elif part_kind == "refusal":
                texts.append(required_str(part, "refusal"))
        except FieldError as error:
            raise error.under(f"content[{index}]") from None
    return texts


def _user_parts(content: str | Sequence[Any]) -> tuple[TextPart | ImagePart, ...]:
    """User or tool-output content. ``input_file`` parts and images by ``file_id`` have no canonical form."""
    if isinstance(content, str):
        return (TextPart(content),) if content else ()
    parts: list[TextPart | ImagePart] = []
    for index, value in enumerate(content):
        try:
            part = as_object(value)
            kind = required_str(part, "type")
            if kind in ("input_text", "output_text"):
                parts.append(TextPart(required_str(part, "text")))
            elif kind == "input_image" and (image := _image(part)) is not None:
                parts.append(image)
        except FieldError as error:
            raise error.under(f"content[{index}]") from None
    return tuple(parts)


def _image(part: Mapping[str, Any]) -> ImagePart | None:
    url = optional_str(part, "image_url")
    if url is None:
        return None  # a ``file_id`` image: only OpenAI can fetch it
    if url.startswith("data:"):
        parsed = parse_data_url(url)
        if parsed is None:
            raise FieldError("image_url", "a data URL must have the form 'data:<media type>;base64,<data>'.")
        return ImagePart(media_type=parsed[0], data=parsed[1])
    return ImagePart(url=url)


def _reasoning(item: Mapping[str, Any]) -> ThinkingPart | RedactedThinkingPart | None:
    text = "\n\n".join(_reasoning_texts(item, "summary", "summary_text"))
    if not text:
        text = "\n\n".join(_reasoning_texts(item, "content", "reasoning_text"))
    content = optional_str(item, "encrypted_content")
    if content:
        return read_tag(content, text)
    return ThinkingPart(text) if text else None


def _reasoning_texts(item: Mapping[str, Any], key: str, kind: str) -> list[str]:
    value = item.get(key)
    if value is None:
        return []
    texts: list[str] = []
    for index, part in enumerate(as_array(value, key)):
        try:
            entry = as_object(part)
            if entry.get("type", kind) == kind:
                text = required_str(entry, "text")
                if text:
                    texts.append(text)
        except FieldError as error:
            raise error.under(f"{key}[{index}]") from None
    return texts


def _arguments(item: Mapping[str, Any]) -> str:
    arguments = item.get("arguments")
    if arguments is None:
        raise missing("arguments")
    if isinstance(arguments, Mapping):  # lenient: some clients send the object itself
        return orjson.dumps(arguments).decode()
    if not isinstance(arguments, str):
        raise wrong_type("arguments", "a JSON string", arguments)
    return arguments or "{}"
