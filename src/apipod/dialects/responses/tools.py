"""A Responses body's ``tools`` and ``tool_choice`` -> canonical tools (docs/protocols/openai-responses.md §4).

``function`` tools map as they are; ``custom`` (free-form) tools become one-string functions whose description
carries the tool's grammar; ``namespace`` members are flattened (``tool_names``). Hosted tools (``web_search``,
``file_search``, ...) and the client's ``tool_search`` only run at OpenAI: they are left out here and reach a
same-dialect upstream through ``ChatRequest.raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.dialects._fields import FieldError, as_array, as_object, optional_str, required_str, wrong_type
from apipod.dialects.responses.tool_names import CUSTOM_PARAMETERS, flat_name
from apipod.domain.chat import ToolChoice, ToolChoiceKind, ToolSpec

_CHOICES = {"auto": ToolChoiceKind.AUTO, "none": ToolChoiceKind.NONE, "required": ToolChoiceKind.REQUIRED}


def decode_tools(value: object) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    specs: list[ToolSpec] = []
    for index, item in enumerate(as_array(value, "tools")):
        try:
            _add(specs, as_object(item), None)
        except FieldError as error:
            raise error.under(f"tools[{index}]") from None
    return tuple(specs)


def _add(specs: list[ToolSpec], tool: Mapping[str, Any], namespace: str | None) -> None:
    kind = tool.get("type")
    if kind == "function":
        specs.append(_function(tool, namespace))
    elif kind == "custom":
        specs.append(_custom(tool, namespace))
    elif kind == "namespace" and namespace is None:
        name = required_str(tool, "name")
        inner = tool.get("tools")
        for index, member in enumerate(as_array(inner, "tools") if inner is not None else ()):
            try:
                _add(specs, as_object(member), name)
            except FieldError as error:
                raise error.under(f"tools[{index}]") from None
    elif not isinstance(kind, str):
        raise wrong_type("type", "a string", kind)


def _function(tool: Mapping[str, Any], namespace: str | None) -> ToolSpec:
    name = flat_name(namespace, required_str(tool, "name"))
    description = optional_str(tool, "description") or ""
    parameters = tool.get("parameters")
    if parameters is None:
        return ToolSpec(name=name, description=description)
    return ToolSpec(name=name, description=description, parameters=as_object(parameters, "parameters"))


def _custom(tool: Mapping[str, Any], namespace: str | None) -> ToolSpec:
    """A free-form tool as a function of one string: the description tells the model what the string must be."""
    name = flat_name(namespace, required_str(tool, "name"))
    lines = [optional_str(tool, "description") or ""]
    lines.append("Pass the tool's raw input text as the `input` string argument (not JSON-encoded content).")
    fmt = tool.get("format")
    if fmt is not None:
        fmt = as_object(fmt, "format")
        if fmt.get("type") == "grammar":
            syntax = optional_str(fmt, "syntax") or "lark"
            definition = optional_str(fmt, "definition") or ""
            lines.append(f"The input must match this {syntax} grammar:\n```\n{definition}\n```")
    return ToolSpec(name=name, description="\n\n".join(line for line in lines if line), parameters=CUSTOM_PARAMETERS)


def decode_tool_choice(value: object, parallel: bool | None) -> ToolChoice | None:
    """String forms; a named function or custom tool; ``allowed_tools`` by its mode. The hosted-tool forms
    name tools the canonical request does not have: no constraint (a same-dialect upstream reads ``raw``)."""
    disable_parallel = parallel is False
    if value is None:
        return None
    if isinstance(value, str):
        kind = _CHOICES.get(value)
        if kind is None:
            raise FieldError("tool_choice", f"unknown value '{value}'; expected auto, none, required or an object.")
        return ToolChoice(kind, disable_parallel=disable_parallel)
    choice = as_object(value, "tool_choice")
    kind = choice.get("type")
    try:
        if kind in ("function", "custom"):
            name = flat_name(optional_str(choice, "namespace"), required_str(choice, "name"))
            return ToolChoice(ToolChoiceKind.TOOL, name=name, disable_parallel=disable_parallel)
        if kind == "allowed_tools":
            mode = optional_str(choice, "mode") or "auto"
            if mode not in ("auto", "required"):
                raise FieldError("mode", f"unknown value '{mode}'; expected auto or required.")
            return ToolChoice(_CHOICES[mode], disable_parallel=disable_parallel)
    except FieldError as error:
        raise error.under("tool_choice") from None
    if not isinstance(kind, str):
        raise wrong_type("tool_choice.type", "a string", kind)
    return ToolChoice(ToolChoiceKind.AUTO, disable_parallel=disable_parallel) if disable_parallel else None
