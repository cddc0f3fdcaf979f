"""The schema cleaner: JSON Schema -> the subset Gemini accepts (docs/protocols/gemini.md §2.3)."""

from __future__ import annotations

from typing import Any

from apipod.dialects.gemini import clean_parameters, clean_schema


def test_drops_rejected_keywords_but_never_property_names() -> None:
    schema: dict[str, Any] = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "x",
        "type": "object",
        "additionalProperties": False,
        "x-vendor": 1,
        "properties": {
            "format": {"type": "string", "format": "date-time", "deprecated": True},
            "pattern": {"type": "string", "pattern": "^a", "examples": ["abc"], "$comment": "c"},
            "title": {"type": "string", "title": "T", "minLength": 1, "maxLength": 9},
        },
        "required": ["format", "pattern", "missing"],
    }
    assert clean_parameters(schema) == {
        "type": "object",
        "properties": {
            "format": {"type": "string", "format": "date-time"},
            "pattern": {"type": "string", "pattern": "^a", "example": "abc"},
            "title": {"type": "string", "title": "T", "minLength": 1, "maxLength": 9},
        },
        "required": ["format", "pattern"],
    }


def test_refs_are_inlined_and_cycles_cut() -> None:
    schema = {
        "type": "object",
        "$defs": {
            "Point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}},
        },
        "properties": {
            "at": {"$ref": "#/$defs/Point", "description": "where"},
            "head": {"$ref": "#/$defs/Node"},
            "other": {"$ref": "#/definitions/Missing"},
        },
    }
    assert clean_parameters(schema) == {
        "type": "object",
        "properties": {
            "at": {
                "type": "object",
                "description": "where",
                "properties": {"x": {"type": "number"}},
                "required": ["x"],
            },
            "head": {"type": "object", "properties": {"next": {"type": "object", "description": "See: Node"}}},
            "other": {"type": "object", "description": "See: Missing"},
        },
    }


def test_const_type_arrays_and_enums() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "fixed"},
            "maybe": {"type": ["integer", "null"], "description": "n"},
            "level": {"type": "integer", "enum": [1, 2, None]},
            "either": {"type": ["string", "number"]},
        },
    }
    assert clean_parameters(schema) == {
        "type": "object",
        "properties": {
            "kind": {"enum": ["fixed"], "type": "string"},
            "maybe": {"type": "integer", "nullable": True, "description": "n"},
            "level": {"type": "string", "nullable": True, "enum": ["1", "2"]},
            "either": {"type": "string", "description": "(accepts: string | number)"},
        },
    }


def test_dropped_constraints_move_into_the_description() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 5, "description": "count"},
            "url": {"type": "string", "format": "uri"},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "minItems": 1},
        },
    }
    assert clean_parameters(schema) == {
        "type": "object",
        "properties": {
            "n": {"type": "number", "description": "count (exclusiveMinimum: 0) (multipleOf: 5)"},
            "url": {"type": "string", "description": "(format: uri)"},
            "tags": {"type": "array", "minItems": 1, "description": "(uniqueItems: true)", "items": {"type": "string"}},
        },
    }


def test_all_of_merges_and_any_of_keeps_clean_branches() -> None:
    schema = {
        "type": "object",
        "properties": {
            "both": {
                "allOf": [
                    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                    {"properties": {"b": {"type": "integer"}}, "required": ["b"]},
                ]
            },
            "opt": {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "optional"},
            "alt": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "mixed": {"anyOf": [{"type": "string"}, {"properties": {"z": {"type": "string"}}}]},
            "nested": {
                "anyOf": [{"type": "string"}, {"anyOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "null"}]}]
            },
        },
    }
    assert clean_parameters(schema) == {
        "type": "object",
        "properties": {
            "both": {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
            "opt": {"type": "string", "nullable": True, "description": "optional"},
            "alt": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "mixed": {"anyOf": [{"type": "string"}, {"type": "object", "properties": {"z": {"type": "string"}}}]},
            "nested": {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}], "nullable": True},
        },
    }


def test_empty_objects() -> None:
    assert clean_parameters({"type": "object", "properties": {}}) is None
    assert clean_parameters({"type": "object", "additionalProperties": False}) is None
    assert clean_parameters({}) is None
    assert clean_parameters(None) is None
    nested = {"type": "object", "properties": {"opts": {"type": "object", "properties": {}, "required": ["x"]}}}
    assert clean_parameters(nested) == {"type": "object", "properties": {"opts": {"type": "object"}}}


def test_results_are_cached_per_schema_and_clean_schema_keeps_empty_objects() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert clean_parameters(schema) is clean_parameters(dict(schema))
    assert clean_schema({"type": "object", "properties": {}}) == {"type": "object"}
