"""The canonical chat model: one request, message and result shape that every wire dialect maps onto.

It is Anthropic-shaped (ordered messages of typed parts, a separate system prompt) because that shape
loses the least when converting between OpenAI, Anthropic and Gemini. Tool results live in messages of
role ``tool``: an Anthropic user turn holding ``tool_result`` blocks decodes to a ``tool`` message followed
by a ``user`` message for whatever else the turn held.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs


class Role(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    SYSTEM = "system"  # a system turn in place (Claude Code's beta); most targets lift it into the prompt


@attrs.frozen
class TextPart:
    text: str
    cache_control: Mapping[str, Any] | None = None


@attrs.frozen
class ImagePart:
    """An image given inline (``data`` is base64) or by ``url``."""

    media_type: str = ""
    data: str | None = attrs.field(default=None, repr=False)
    url: str | None = None


@attrs.frozen
class ToolUsePart:
    """A tool call made by the assistant. ``arguments`` is the JSON text of the call's input object.

    ``signature`` carries an opaque upstream continuity token bound to this call (Gemini's
    ``thoughtSignature``); it is returned to the client and sent back byte for byte.
    """

    id: str
    name: str
    arguments: str = "{}"
    signature: str | None = None


@attrs.frozen
class ToolResultPart:
    tool_use_id: str
    content: tuple[TextPart | ImagePart, ...] = ()
    is_error: bool = False
    name: str | None = None  # the function's name when the dialect carries it (Gemini needs it)

    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


@attrs.frozen
class ThinkingPart:
    """Reasoning text and its opaque signature. ``origin`` is the upstream kind that signed it, when the client's
    dialect says (a Responses ``encrypted_content`` does): a signed part goes back only to that kind."""

    text: str
    signature: str = ""
    origin: str = ""


@attrs.frozen
class RedactedThinkingPart:
    data: str = attrs.field(repr=False)
    origin: str = ""


Part = TextPart | ImagePart | ToolUsePart | ToolResultPart | ThinkingPart | RedactedThinkingPart


@attrs.frozen
class Message:
    role: Role
    parts: tuple[Part, ...]

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))


@attrs.frozen
class ToolSpec:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = attrs.field(factory=lambda: {"type": "object", "properties": {}})


class ToolChoiceKind(enum.StrEnum):
    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"  # must call some tool (OpenAI "required", Anthropic "any")
    TOOL = "tool"  # must call the named tool


@attrs.frozen
class ToolChoice:
    kind: ToolChoiceKind
    name: str | None = None
    disable_parallel: bool = False


class ThinkingMode(enum.StrEnum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    ADAPTIVE = "adaptive"


@attrs.frozen
class ThinkingConfig:
    mode: ThinkingMode
    budget_tokens: int | None = None
    effort: str | None = None  # OpenAI reasoning_effort when that is what the client said


class ResponseFormatKind(enum.StrEnum):
    TEXT = "text"
    JSON_OBJECT = "json_object"  # any JSON object
    JSON_SCHEMA = "json_schema"  # JSON matching ``schema``


@attrs.frozen(kw_only=True)
class ResponseFormat:
    """The answer's required shape (OpenAI ``response_format`` / Responses ``text.format``, Gemini
    ``responseMimeType`` + ``responseSchema``). ``schema`` is plain JSON Schema."""

    kind: ResponseFormatKind
    schema: Mapping[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@attrs.frozen(kw_only=True)
class ChatRequest:
    """What a client asked for, in canonical form.

    Attributes:
        model: the model name the client sent (a plan alias, the plan's name, or anything).
        dialect: the wire dialect the request arrived in ("openai", "anthropic", or "" when built in code).
        raw: the decoded wire body, kept so that a same-dialect upstream receives the fields apipod does
            not model untouched. Never sent to an upstream of another dialect.
        raw_headers: client headers worth forwarding to a same-dialect upstream (``anthropic-beta``).
        response_format: the answer's required shape, when the client asked for JSON.
        signed_origins: the ``origin``s of the signed thinking parts in ``messages`` (empty for dialects that do
            not say), so the parts an upstream did not sign are dropped toward it without a scan per request.
    """

    model: str
    messages: tuple[Message, ...]
    system: tuple[TextPart, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    thinking: ThinkingConfig | None = None
    user: str | None = None
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    dialect: str = ""
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)
    raw_headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    response_format: ResponseFormat | None = None
    signed_origins: frozenset[str] = frozenset()

    def system_text(self) -> str:
        return "\n\n".join(p.text for p in self.system if p.text)


class FinishReason(enum.StrEnum):
    END_TURN = "end_turn"
    MAX_TOKENS = "max_tokens"
    STOP_SEQUENCE = "stop_sequence"
    TOOL_USE = "tool_use"
    CONTENT_FILTER = "content_filter"
    PAUSE_TURN = "pause_turn"


@attrs.frozen
class Usage:
    """Token counts of one call.

    ``input_tokens`` counts the whole prompt, cache reads and writes included (OpenAI's and Gemini's
    convention; Anthropic's ``input_tokens`` is the uncached remainder). ``output_tokens`` includes
    reasoning. A budget's "tokens" are ``input_tokens + output_tokens``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def merged(self, newer: Usage) -> Usage:
        """Latest-wins merge of running totals, never replacing a known count with zero."""
        return Usage(
            input_tokens=newer.input_tokens or self.input_tokens,
            output_tokens=newer.output_tokens or self.output_tokens,
            cached_input_tokens=newer.cached_input_tokens or self.cached_input_tokens,
            cache_creation_input_tokens=newer.cache_creation_input_tokens or self.cache_creation_input_tokens,
            reasoning_tokens=newer.reasoning_tokens or self.reasoning_tokens,
        )


@attrs.frozen(kw_only=True)
class ChatResult:
    """A complete assistant answer. ``model`` is the model name to show the client; ``origin`` the upstream kind
    that answered (set by the application), for dialects that tag signatures with it."""

    id: str
    model: str
    parts: tuple[Part, ...]
    finish_reason: FinishReason = FinishReason.END_TURN
    stop_sequence: str | None = None
    usage: Usage = Usage()
    origin: str = ""

    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    def shown_as(self, model: str, origin: str) -> ChatResult:
        """This answer as its client gets it: under the model name it asked for, tagged with the upstream kind
        that answered. (PERF: made field by field; ``attrs.evolve`` costs as much again, on every answer.)"""
        return ChatResult(
            id=self.id,
            model=model,
            parts=self.parts,
            finish_reason=self.finish_reason,
            stop_sequence=self.stop_sequence,
            usage=self.usage,
            origin=origin,
        )
