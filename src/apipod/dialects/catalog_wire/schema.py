"""JSON Schema (the 2020-12 dialect OpenAPI 3.1 uses) from the attrs classes the converter structures admin
input into, so the published document and the validation are one definition.

Small on purpose: it knows the types our wire classes use (str, int, float, bool, datetime, Decimal, enums,
``X | None``, tuples and lists, mappings, nested attrs classes). A field's ``metadata={"schema": {...}}``
adds what the type cannot say (bounds, patterns, descriptions): the same numbers the field's hook checks.
A type it does not know becomes ``{}`` (anything), never a wrong claim.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Union, get_args, get_origin, get_type_hints

import attrs

SCHEMA = "schema"  # the attrs metadata key of a field's extra JSON Schema keywords
DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "description": "An exact decimal amount."}
# Input takes a JSON number too (read exactly, from its text).
DECIMAL_INPUT = {"type": ["string", "number"], "description": "A decimal amount: a number or a decimal string."}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema or "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema["type"]
    return {**schema, "type": [*(kind if isinstance(kind, list) else [kind]), "null"]} | (
        {"enum": [*schema["enum"], None]} if "enum" in schema else {}
    )


class SchemaBuilder:
    """Collects the named schemas (``components.schemas``) that the generated ones refer to."""

    def __init__(self, known: Mapping[Any, dict[str, Any]] | None = None) -> None:
        """``known``: the schemas of types read by a hook of their own (a window: ``"day"``, 5, a table)."""
        self.components: dict[str, dict[str, Any]] = {}
        self._known = dict(known or {})

    def ref(self, cls: type) -> dict[str, Any]:
        """A ``$ref`` to ``cls``'s schema, generated once."""
        name = cls.__name__
        if name not in self.components:
            self.components[name] = {}  # reserve first: a class may refer to itself
            self.components[name] = self.object_schema(cls)
        return {"$ref": f"#/components/schemas/{name}"}

    def object_schema(self, cls: type) -> dict[str, Any]:
        hints = get_type_hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for field in attrs.fields(cls):
            if not field.init:
                continue
            schema = self.of(hints[field.name]) | dict(field.metadata.get(SCHEMA, {}))
            properties[field.alias or field.name] = schema
            if field.default is attrs.NOTHING:
                required.append(field.alias or field.name)
        result: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            result["required"] = required
        if cls.__doc__:
            result["description"] = " ".join(cls.__doc__.split())
        return result

    def of(self, type_: Any) -> dict[str, Any]:
        origin, args = get_origin(type_), get_args(type_)
        if origin in (Union, types.UnionType):
            options = [a for a in args if a is not type(None)]
            inner = self.of(options[0]) if len(options) == 1 else {"anyOf": [self.of(a) for a in options]}
            return nullable(inner) if len(options) < len(args) else inner
        if origin in (tuple, list):
            item = args[0] if args else Any
            return {"type": "array", "items": self.of(item)}
        if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
            return {"type": "object", "additionalProperties": self.of(args[1]) if len(args) == 2 else {}}
        return self._scalar(type_)

    def _scalar(self, type_: Any) -> dict[str, Any]:
        if type_ in self._known:
            return dict(self._known[type_])
        if type_ is bool:
            return {"type": "boolean"}
        if type_ is int:
            return {"type": "integer"}
        if type_ is float:
            return {"type": "number"}
        if type_ is str:
            return {"type": "string"}
        if type_ is datetime:
            return {"type": "string", "format": "date-time"}
        if type_ is Decimal:
            return dict(DECIMAL_INPUT)
        if isinstance(type_, type) and issubclass(type_, enum.Enum):
            return {"type": "string", "enum": [m.value for m in type_]}
        if isinstance(type_, type) and attrs.has(type_):
            return self.ref(type_)
        return {}
