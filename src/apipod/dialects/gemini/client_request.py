"""Client side: a ``generateContent`` / ``streamGenerateContent`` / ``countTokens`` body -> canonical ChatRequest
(docs/protocols/gemini.md §2, docs/protocols/gemini-cli.md §4).

The conversation is ``client_contents``'s; this module reads the system instruction, the function declarations
(``parametersJsonSchema`` as it is, the OpenAPI-subset ``parameters`` converted), the tool config and the
generation config. Built-in tools (``googleSearch``, ``codeExecution``, ``urlContext``), ``safetySettings``,
``cachedContent`` and ``labels`` have no canonical field: ``raw`` keeps them for a Gemini upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects._fields import (
    FieldError,
    Wording,
    as_array,
    as_object,
    missing,
    optional_bool,
    optional_int,
    optional_number,
    optional_str,
    required_str,
)
from apipod.dialects.gemini.client_contents import Conversation, get, key_of
from apipod.dialects.gemini.client_schema import to_json_schema
from apipod.domain.chat import (
    ChatRequest,
    ResponseFormat,
    ResponseFormatKind,
    TextPart,
    ThinkingConfig,
    ThinkingMode,
    ToolChoice,
    ToolChoiceKind,
    ToolSpec,
)

DIALECT = "gemini"
# The largest output cap a client may ask for (as for OpenAI clients): a larger value is a client bug.
MAX_OUTPUT_TOKENS = 1_000_000
# thinkingLevel -> (mode, budget): the budgets OpenAI efforts get (docs/protocols/translation.md §5.2); MINIMAL
# is "as little as possible", which other vendors only express as off.
_LEVELS: dict[str, tuple[ThinkingMode, int | None]] = {
    "minimal": (ThinkingMode.DISABLED, None),
    "low": (ThinkingMode.ENABLED, 2048),
    "medium": (ThinkingMode.ENABLED, 8192),
    "high": (ThinkingMode.ENABLED, 24576),
    "xhigh": (ThinkingMode.ENABLED, 24576),
}
_MODES = {
    "AUTO": ToolChoiceKind.AUTO,
    "VALIDATED": ToolChoiceKind.AUTO,  # the model decides; only the call's shape is checked
    "ANY": ToolChoiceKind.REQUIRED,
    "NONE": ToolChoiceKind.NONE,
}
# e.g. "Invalid value at 'contents[1].parts[0].functionCall.name': required field is missing."
_WORDING = Wording(
    located="Invalid value at '{path}': {problem}",
    body="Invalid JSON payload received. {problem}",
    required="required field is missing.",
    wrong_type="expected {expected}, got {got}.",
    too_small="must be at least {minimum}, got {value}.",
    article=True,
)

Json = Mapping[str, Any]


def decode_client_request(body: dict[str, Any], *, model: str, stream: bool, headers: Mapping[str, str]) -> ChatRequest:
    """Validate and convert a ``GenerateContentRequest``. ``model`` is the URL's, without ``models/``; ``raw`` is
    ``body`` itself (no copy). No client header changes the answer, so ``headers`` is not kept.

    Raises:
        InvalidRequestError: naming the offending field in ``param``.
    """
    del headers
    try:
        return _decode(as_object(body), model=model, stream=stream, raw=body)
    except FieldError as error:
        raise error.to_invalid_request(_WORDING) from None


def decode_count_tokens_request(body: dict[str, Any], *, model: str) -> ChatRequest:
    """A ``countTokens`` body: ``{"contents": [...]}`` or ``{"generateContentRequest": {...}}`` (which also counts
    the system instruction and the tools)."""
    try:
        inner = get(as_object(body), "generateContentRequest")
        if inner is not None:
            key = key_of(body, "generateContentRequest")
            try:
                return _decode(as_object(inner), model=model, stream=False, raw=body)
            except FieldError as error:
                raise error.under(key) from None
        conversation = _conversation(body)
        return ChatRequest(model=model, messages=tuple(conversation.messages), dialect=DIALECT, raw=body)
    except FieldError as error:
        raise error.to_invalid_request(_WORDING) from None


def _conversation(body: Json) -> Conversation:
    key = key_of(body, "contents")
    contents = body.get(key)
    if contents is None:
        raise missing(key)
    if not as_array(contents, key):
        raise FieldError(key, "must not be empty.")
    conversation = Conversation()
    try:
        conversation.add_all(contents)
    except FieldError as error:
        raise error.under(key) from None
    return conversation


def _decode(body: Json, *, model: str, stream: bool, raw: Json) -> ChatRequest:
    conversation = _conversation(body)
    if not conversation.messages:
        raise FieldError(key_of(body, "contents"), "holds no text, media or function call to answer.")
    tools = _tools(body)
    config = _object(body, "generationConfig")
    settings: dict[str, Any] = {}
    if config is not None:
        try:
            settings = _generation(config)
        except FieldError as error:
            raise error.under(key_of(body, "generationConfig")) from None
    return ChatRequest(
        model=model,
        messages=tuple(conversation.messages),
        system=_system(body),
        tools=tools,
        tool_choice=_tool_choice(body) if tools else None,
        stream=stream,
        dialect=DIALECT,
        raw=raw,
        **settings,
    )


def _object(obj: Json, camel: str) -> Json | None:
    key = key_of(obj, camel)
    value = obj.get(key)
    return None if value is None else as_object(value, key)


def _system(body: Json) -> tuple[TextPart, ...]:
    key = key_of(body, "systemInstruction")
    value = body.get(key)
    if value is None:
        return ()
    if isinstance(value, str):  # the SDKs accept a bare string
        return (TextPart(value),) if value else ()
    if isinstance(value, list):  # a bare list of parts
        parts, path = value, key
    else:
        parts, path = as_object(value, key).get("parts") or [], f"{key}.parts"
    out: list[TextPart] = []
    for number, part in enumerate(as_array(parts, path)):
        try:
            text = optional_str(as_object(part), "text")
        except FieldError as error:
            raise error.under(f"{path}[{number}]") from None
        if text:
            out.append(TextPart(text))
    return tuple(out)


def _tools(body: Json) -> tuple[ToolSpec, ...]:
    key = key_of(body, "tools")
    value = body.get(key)
    if value is None:
        return ()
    specs: list[ToolSpec] = []
    for index, tool in enumerate(as_array(value, key)):
        path = f"{key}[{index}]"
        tool = as_object(tool, path)
        declarations = get(tool, "functionDeclarations")
        if declarations is None:
            continue  # a built-in tool: nothing canonical to say
        field = key_of(tool, "functionDeclarations")
        for number, declaration in enumerate(as_array(declarations, f"{path}.{field}")):
            try:
                specs.append(_declaration(as_object(declaration)))
            except FieldError as error:
                raise error.under(f"{path}.{field}[{number}]") from None
    return tuple(specs)


def _declaration(declaration: Json) -> ToolSpec:
    name = required_str(declaration, "name")
    description = optional_str(declaration, "description") or ""
    schema = get(declaration, "parametersJsonSchema")
    if schema is not None:
        parameters: Any = as_object(schema, key_of(declaration, "parametersJsonSchema"))
    else:
        legacy = get(declaration, "parameters")
        if legacy is None:
            return ToolSpec(name, description)
        parameters = to_json_schema(as_object(legacy, "parameters"))
    if "type" not in parameters:
        parameters = {"type": "object", **parameters}
    return ToolSpec(name, description, parameters)


def _tool_choice(body: Json) -> ToolChoice | None:
    config = _object(body, "toolConfig")
    if config is None:
        return None
    field = key_of(config, "functionCallingConfig")
    calling = config.get(field)
    if calling is None:
        return None
    path = f"{key_of(body, 'toolConfig')}.{field}"
    try:
        return _calling(as_object(calling))
    except FieldError as error:
        raise error.under(path) from None


def _calling(calling: Json) -> ToolChoice | None:
    mode = (optional_str(calling, "mode") or "").upper()
    if mode in ("", "MODE_UNSPECIFIED"):
        return None
    kind = _MODES.get(mode)
    if kind is None:
        raise FieldError("mode", f"unknown mode '{mode}': expected AUTO, ANY, NONE or VALIDATED.")
    key = key_of(calling, "allowedFunctionNames")
    names = calling.get(key)
    allowed = [str(n) for n in as_array(names, key)] if names is not None else []
    if kind is ToolChoiceKind.REQUIRED and len(allowed) == 1:
        return ToolChoice(ToolChoiceKind.TOOL, name=allowed[0])
    return ToolChoice(kind)  # several allowed names: any tool (a subset has no canonical form)


def _generation(config: Json) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "temperature": optional_number(config, key_of(config, "temperature")),
        "top_p": optional_number(config, key_of(config, "topP")),
        "top_k": optional_int(config, key_of(config, "topK"), minimum=1),
        "max_output_tokens": _max_tokens(config),
        "stop": _stop(config),
        "thinking": _thinking(config),
        "response_format": _response_format(config),
    }
    key = key_of(config, "candidateCount")
    count = optional_int(config, key, minimum=1)
    if count is not None and count > 1:
        raise FieldError(key, "only 1 is supported: apipod returns a single candidate.")
    return settings


def _max_tokens(config: Json) -> int | None:
    key = key_of(config, "maxOutputTokens")
    value = optional_int(config, key, minimum=1)
    if value is not None and value > MAX_OUTPUT_TOKENS:
        raise FieldError(key, f"must be at most {MAX_OUTPUT_TOKENS}, got {value}.")
    return value


def _stop(config: Json) -> tuple[str, ...]:
    key = key_of(config, "stopSequences")
    value = config.get(key)
    if value is None:
        return ()
    stops: list[str] = []
    for index, stop in enumerate(as_array(value, key)):
        if not isinstance(stop, str):
            raise FieldError(f"{key}[{index}]", "expected a string.")
        stops.append(stop)
    return tuple(stops)


def _thinking(config: Json) -> ThinkingConfig | None:
    key = key_of(config, "thinkingConfig")
    value = config.get(key)
    if value is None:
        return None
    try:
        return _thinking_config(as_object(value))
    except FieldError as error:
        raise error.under(key) from None


def _thinking_config(thinking: Json) -> ThinkingConfig | None:
    """``thinkingBudget`` 0 is off and -1 the model's choice; ``thinkingLevel`` is an effort; ``includeThoughts``
    alone asks for thinking at the model's discretion."""
    include = optional_bool(thinking, key_of(thinking, "includeThoughts"))
    budget = optional_int(thinking, key_of(thinking, "thinkingBudget"), minimum=-1)
    level_key = key_of(thinking, "thinkingLevel")
    level = (optional_str(thinking, level_key) or "").lower() or None
    if level == "thinking_level_unspecified":
        level = None
    if level is not None and level not in _LEVELS:
        raise FieldError(level_key, f"unknown level '{level.upper()}': expected MINIMAL, LOW, MEDIUM or HIGH.")
    if budget == 0:
        return ThinkingConfig(ThinkingMode.DISABLED, effort=level)
    if budget is not None and budget > 0:
        return ThinkingConfig(ThinkingMode.ENABLED, budget_tokens=budget, effort=level)
    if budget == -1:
        return ThinkingConfig(ThinkingMode.ADAPTIVE, effort=level)
    if level is not None:
        mode, default = _LEVELS[level]
        return ThinkingConfig(mode, budget_tokens=default, effort=level)
    return ThinkingConfig(ThinkingMode.ADAPTIVE) if include else None


def _response_format(config: Json) -> ResponseFormat | None:
    mime = optional_str(config, key_of(config, "responseMimeType"))
    if mime is None or mime.lower() != "application/json":
        return None  # text/plain, text/x.enum: plain text for every upstream but Gemini
    for camel in ("responseJsonSchema", "responseSchema"):
        key = key_of(config, camel)
        schema = config.get(key)
        if schema is not None:
            return ResponseFormat(kind=ResponseFormatKind.JSON_SCHEMA, schema=to_json_schema(as_object(schema, key)))
    return ResponseFormat(kind=ResponseFormatKind.JSON_OBJECT)
