"""Typed readers for validating a client's JSON body.

A failure raises ``FieldError`` with a path relative to the value being read; each enclosing loop adds its
own segment on the way out (``FieldError.under``). Paths are thus only built when something is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.domain.errors import InvalidRequestError


class FieldError(Exception):
    """A bad field, not yet turned into an ``InvalidRequestError`` (its path is still growing)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def under(self, prefix: str) -> FieldError:
        """The same error seen from the enclosing value (``prefix`` is e.g. ``messages[2]``)."""
        if not self.path:
            return FieldError(prefix, self.problem)
        sep = "" if self.path.startswith("[") else "."
        return FieldError(f"{prefix}{sep}{self.path}", self.problem)

    def to_invalid_request(self) -> InvalidRequestError:
        where = f"'{self.path}'" if self.path else "The request body"
        return InvalidRequestError(f"Invalid {where}: {self.problem}", param=self.path or None)


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def wrong_type(path: str, expected: str, value: object) -> FieldError:
    return FieldError(path, f"expected {expected}, got {type_name(value)}.")


def missing(path: str) -> FieldError:
    return FieldError(path, "this field is required.")


def as_object(value: object, path: str = "") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise wrong_type(path, "an object", value)
    return value


def as_list(value: object, path: str = "") -> list[Any]:
    if not isinstance(value, list):
        raise wrong_type(path, "an array", value)
    return value


def required_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        raise missing(key)
    if not isinstance(value, str):
        raise wrong_type(key, "a string", value)
    return value


def optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise wrong_type(key, "a string", value)
    return value


def optional_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise wrong_type(key, "a boolean", value)
    return value


def optional_number(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number", value)
    return float(value)


def optional_int(obj: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(key, "an integer", value)
    if minimum is not None and value < minimum:
        raise FieldError(key, f"must be at least {minimum}, got {value}.")
    return value
