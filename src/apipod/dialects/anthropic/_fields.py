"""Typed field readers for validating a client body.

A failure raises ``FieldError`` carrying the path relative to the object being read; each enclosing loop
prepends its own segment on the way out. Paths are therefore built only when something is wrong, never per
field on the hot path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apipod.domain.errors import InvalidRequestError


class FieldError(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def under(self, prefix: str) -> FieldError:
        """The same error seen from the enclosing object (``prefix`` is e.g. ``messages[2]``)."""
        if not self.path:
            return FieldError(prefix, self.problem)
        sep = "" if self.path.startswith("[") else "."
        return FieldError(f"{prefix}{sep}{self.path}", self.problem)

    def to_invalid_request(self) -> InvalidRequestError:
        return InvalidRequestError(f"{self.path}: {self.problem}", param=self.path or None)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def wrong_type(path: str, expected: str, value: object) -> FieldError:
    return FieldError(path, f"Input should be {expected}, got {_type_name(value)}")


def as_object(value: object, path: str = "") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise wrong_type(path, "an object", value)
    return value


def as_array(value: object, path: str = "") -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise wrong_type(path, "an array", value)
    return value


def req_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        raise FieldError(key, "Field required")
    if not isinstance(value, str):
        raise wrong_type(key, "a string", value)
    return value


def opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise wrong_type(key, "a string", value)


def opt_int(obj: Mapping[str, Any], key: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        # JSON has one number type; accept 1024.0 but not 1024.5.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise wrong_type(key, "an integer", value)
    return value


def opt_number(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number", value)
    return float(value)


def opt_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise wrong_type(key, "a boolean", value)


def opt_object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    return as_object(value, key)
