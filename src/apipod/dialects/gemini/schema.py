"""JSON Schema -> the OpenAPI-3.0 subset Gemini's ``functionDeclarations[].parameters`` accepts.

Gemini answers 400 to any keyword outside its subset (docs/protocols/gemini.md §2.3), while clients send full JSON
Schema (``$ref``, ``additionalProperties``, ``const``, type arrays...). The cleaner only walks schema nodes: the keys
of ``properties`` are names, never keywords, so a property called ``format`` or ``pattern`` survives.
Dropped constraints are noted in the description so the model still sees them. Results are cached by the
schema's JSON bytes: agents send the same tool list on every turn.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import orjson

_ACCEPTED = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "minimum",
        "maximum",
    }
)
# Constraints Gemini cannot express, kept as a hint in the description.
_HINTED = ("exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems", "minContains", "maxContains")
# Formats the subset accepts per type; any other format moves into the description.
_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
_RANK = {"object": 3, "array": 2}
_MAX_DEPTH = 32


def clean_parameters(schema: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The cleaned ``parameters`` of a tool, or None when the tool takes no arguments (Gemini rejects an
    OBJECT with empty ``properties``, so such a tool is declared without ``parameters``)."""
    if not schema:
        return None
    return _clean_cached(orjson.dumps(schema))


@functools.lru_cache(maxsize=512)
def _clean_cached(key: bytes) -> dict[str, Any] | None:
    schema = orjson.loads(key)
    if not isinstance(schema, dict):
        return None
    defs: dict[str, Any] = {}
    for name in ("definitions", "$defs"):
        table = schema.get(name)
        if isinstance(table, dict):
            defs.update(table)
    root = _Cleaner(defs).node(schema, 0)
    if "properties" not in root and _type_of(root) in (None, "object") and "anyOf" not in root:
        return None
    if "type" not in root and "properties" in root:
        root["type"] = "object"
    return root


def clean_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Clean any schema node (``responseSchema`` and the like), keeping empty objects."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _Cleaner(defs).node(schema, 0)


def _type_of(node: Mapping[str, Any]) -> str | None:
    kind = node.get("type")
    return kind.lower() if isinstance(kind, str) else None


def _hint(node: dict[str, Any], text: str) -> None:
    current = node.get("description")
    node["description"] = f"{current} ({text})" if isinstance(current, str) and current else f"({text})"


class _Cleaner:
    def __init__(self, defs: Mapping[str, Any]) -> None:
        self._defs = defs
        self._resolving: set[str] = set()

    def node(self, raw: Any, depth: int) -> dict[str, Any]:
        if not isinstance(raw, Mapping) or depth > _MAX_DEPTH:
            return {}
        node = dict(raw)
        ref = node.pop("$ref", None)
        if isinstance(ref, str):
            node = self._inline(ref, node, depth)
        if isinstance(node.get("allOf"), list):
            node = self._merge_all_of(node, depth)
        if "const" in node:
            node["enum"] = [node.pop("const")]
        out: dict[str, Any] = {}
        self._type(node, out)
        for key in ("title", "description", "pattern", "minItems", "maxItems", "minLength", "maxLength"):
            if key in node:
                out[key] = node[key]
        for key in ("minProperties", "maxProperties", "minimum", "maximum", "default", "example", "nullable"):
            if key in node:
                out[key] = node[key]
        if "example" not in out and isinstance(node.get("examples"), list) and node["examples"]:
            out["example"] = node["examples"][0]
        if isinstance(node.get("propertyOrdering"), list):
            out["propertyOrdering"] = node["propertyOrdering"]
        self._format(node, out)
        for key in _HINTED:
            if key in node:
                _hint(out, f"{key}: {orjson.dumps(node[key]).decode()}")
        if "enum" in node:
            self._enum(node["enum"], out)
        self._composite(node, out, depth)
        self._object(node, out, depth)
        items = node.get("items")
        if isinstance(items, list):
            items = items[0] if items else None
        if isinstance(items, Mapping):
            out["items"] = self.node(items, depth + 1)
        return out

    def _inline(self, ref: str, sibling: dict[str, Any], depth: int) -> dict[str, Any]:
        name = ref.rsplit("/", 1)[-1]
        target = self._defs.get(name) if ref.startswith("#/") else None
        if not isinstance(target, Mapping) or name in self._resolving:
            return {"type": "object", "description": sibling.get("description") or f"See: {name}"}
        self._resolving.add(name)
        try:
            inlined = self.node(target, depth + 1)
        finally:
            self._resolving.discard(name)
        return {**inlined, **sibling}

    def _merge_all_of(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        # A client's schema may hold anything here: only an object of properties and a list of names count.
        own_properties, own_required = merged.get("properties"), merged.get("required")
        properties: dict[str, Any] = dict(own_properties) if isinstance(own_properties, Mapping) else {}
        required: list[str] = [r for r in own_required if isinstance(r, str)] if isinstance(own_required, list) else []
        for branch in node["allOf"]:
            part = self.node(branch, depth + 1)
            properties.update(part.pop("properties", {}))
            required.extend(r for r in part.pop("required", []) if r not in required)
            for key, value in part.items():
                merged.setdefault(key, value)
        if properties:
            merged["properties"] = properties
            merged.setdefault("type", "object")
        if required:
            merged["required"] = required
        return merged

    def _type(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if isinstance(k, str) and k.lower() != "null"]
            if len(kinds) < len(kind):
                out["nullable"] = True
            if len(kinds) > 1:
                _hint(out, "accepts: " + " | ".join(kinds))
            kind = kinds[0] if kinds else None
        if isinstance(kind, str):
            if kind.lower() == "null":
                out["nullable"] = True
            else:
                out["type"] = kind

    def _format(self, node: Mapping[str, Any], out: dict[str, Any]) -> None:
        fmt = node.get("format")
        if not isinstance(fmt, str):
            return
        kind = _type_of(out)
        if kind is not None and fmt in _FORMATS.get(kind, ()):
            out["format"] = fmt
        else:
            _hint(out, f"format: {fmt}")

    def _enum(self, values: Any, out: dict[str, Any]) -> None:
        if not isinstance(values, list):
            return
        if None in values:
            out["nullable"] = True
        members = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in values if v is not None]
        if not members:
            return
        out["enum"] = members
        if _type_of(out) != "string":
            out["type"] = "string"
            out.pop("format", None)

    def _composite(self, node: Mapping[str, Any], out: dict[str, Any], depth: int) -> None:
        branches = [b for key in ("anyOf", "oneOf") if isinstance(node.get(key), list) for b in node[key]]
        if not branches:
            return
        cleaned: list[dict[str, Any]] = []
        for branch in branches:
            node_ = self.node(branch, depth + 1)
            nested = node_.get("anyOf")
            if nested and "type" not in node_ and "properties" not in node_:
                cleaned.extend(nested)  # a nested union flattens into this one
                if node_.get("nullable"):
                    cleaned.append({"nullable": True})
            else:
                cleaned.append(node_)
        if any(c.get("nullable") and "type" not in c for c in cleaned):
            out["nullable"] = True
        real = [c for c in cleaned if "type" in c or "properties" in c or "anyOf" in c]
        if len(real) == 1:
            for key, value in real[0].items():
                out.setdefault(key, value)
        elif real and all("type" in c and "anyOf" not in c for c in real):
            out.pop("type", None)
            out["anyOf"] = real
        elif real:
            best = max(real, key=lambda c: _RANK.get(_type_of(c) or "", 1))
            for key, value in best.items():
                out.setdefault(key, value)
            _hint(out, "accepts: " + " | ".join(_type_of(c) or "any" for c in real))

    def _object(self, node: Mapping[str, Any], out: dict[str, Any], depth: int) -> None:
        properties = node.get("properties")
        if isinstance(properties, Mapping) and properties:
            out["properties"] = {name: self.node(sub, depth + 1) for name, sub in properties.items()}
            out.setdefault("type", "object")
        elif "properties" in out and not out["properties"]:
            del out["properties"]
        required = node.get("required", out.get("required"))
        known = out.get("properties") or {}
        names = [r for r in required if isinstance(r, str) and r in known] if isinstance(required, list) else []
        if names:
            out["required"] = names
        else:
            out.pop("required", None)
