"""Gemini's OpenAPI-subset ``Schema`` (``parameters``, ``responseSchema``) -> plain JSON Schema, for the canonical
request (docs/protocols/gemini.md §2.3).

The subset differs from JSON Schema in two ways that matter: ``type`` is an upper-case enum (``OBJECT``,
``STRING``...) and ``nullable: true`` stands where JSON Schema says ``"type": [..., "null"]``. Only schema nodes
are walked: the keys of ``properties`` are names, so a property called ``type`` or ``nullable`` survives.
``propertyOrdering`` is Gemini's own and is dropped; snake_case spellings (the Python SDK's) become camelCase;
every other keyword is kept as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties", "dependentSchemas"})
_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_NODES = frozenset({"items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames"})
_DROPPED = frozenset({"nullable", "propertyOrdering", "property_ordering"})
# The google-genai Python SDK writes the subset's keywords in snake_case (``max_items``); JSON Schema's are camelCase.
_CAMEL = {
    "any_of": "anyOf",
    "max_items": "maxItems",
    "min_items": "minItems",
    "max_length": "maxLength",
    "min_length": "minLength",
    "max_properties": "maxProperties",
    "min_properties": "minProperties",
}
_MAX_DEPTH = 64


def to_json_schema(schema: Any) -> Any:
    """The JSON Schema for a Gemini ``Schema`` (a JSON Schema that only spells its types in upper case, as the
    Gemini CLI's ``responseJsonSchema`` does, comes out with lower-case types and is otherwise unchanged)."""
    return _node(schema, 0)


def _node(schema: Any, depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return schema
    node: Mapping[str, Any] = schema
    out: dict[str, Any] = {}
    for name, value in node.items():
        key = _CAMEL.get(name, name)
        if key == "type":
            kind = _type(value)
            if kind is not None:
                out["type"] = kind
        elif key in _DROPPED:
            continue
        elif key in _MAPS and isinstance(value, Mapping):
            out[key] = {prop: _node(sub, depth + 1) for prop, sub in value.items()}
        elif key in _LISTS and isinstance(value, list):
            out[key] = [_node(sub, depth + 1) for sub in value]
        elif key in _NODES:
            out[key] = [_node(sub, depth + 1) for sub in value] if isinstance(value, list) else _node(value, depth + 1)
        else:
            out[key] = value
    if node.get("nullable") is True:
        _allow_null(out)
    return out


def _type(value: Any) -> Any:
    if isinstance(value, str):
        kind = value.lower()
        return None if kind == "type_unspecified" else kind
    if isinstance(value, list):
        return [v.lower() if isinstance(v, str) else v for v in value]
    return value


def _allow_null(out: dict[str, Any]) -> None:
    kind = out.get("type")
    if isinstance(kind, str):
        if kind != "null":
            out["type"] = [kind, "null"]
    elif isinstance(kind, list):
        if "null" not in kind:
            out["type"] = [*kind, "null"]
    elif isinstance(out.get("anyOf"), list):
        out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    else:
        return  # no type at all: the node already accepts null
    enum = out.get("enum")
    if isinstance(enum, list) and None not in enum:
        out["enum"] = [*enum, None]
