"""Typed field readers for validating a client's JSON body, shared by the client-side codecs.

A failure raises ``FieldError`` with a path relative to the value being read; each enclosing loop adds its
own segment on the way out (``FieldError.under``), so paths are only built when something is wrong. The
readers' own failures (missing, wrong type, too small) are kept as facts, not sentences: each dialect words
them like its real API when the error leaves the codec (``FieldError.to_invalid_request(wording)``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from apipod.domain.errors import InvalidRequestError

_FLOAT_LIMIT = int(sys.float_info.max)
_INT64 = 2**63


@dataclass(frozen=True, slots=True)
class Wording:
    """How one dialect phrases a validation error (``str.format`` templates)."""

    located: str  # {path}, {problem}
    body: str  # {problem}: the body itself is wrong (empty path)
    required: str
    wrong_type: str  # {expected}, {got}
    too_small: str  # {minimum}, {value}
    article: bool  # "got a number" rather than "got number"


@dataclass(frozen=True, slots=True)
class _Missing:
    def word(self, wording: Wording) -> str:
        return wording.required


@dataclass(frozen=True, slots=True)
class _WrongType:
    expected: str
    got: str  # bare JSON type name

    def word(self, wording: Wording) -> str:
        got = _ARTICLES.get(self.got, self.got) if wording.article else self.got
        return wording.wrong_type.format(expected=self.expected, got=got)


@dataclass(frozen=True, slots=True)
class _TooSmall:
    minimum: int
    value: int

    def word(self, wording: Wording) -> str:
        return wording.too_small.format(minimum=self.minimum, value=self.value)


_ARTICLES = {
    "boolean": "a boolean",
    "number": "a number",
    "string": "a string",
    "object": "an object",
    "array": "an array",
}


class FieldError(Exception):
    """A bad field, not yet an ``InvalidRequestError``: its path is still growing.

    ``problem`` is either final text (a codec's own check, already in its dialect's words) or a reader's
    failure that the dialect's ``Wording`` turns into text.
    """

    def __init__(self, path: str, problem: str | _Missing | _WrongType | _TooSmall) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def under(self, prefix: str) -> FieldError:
        """The same error seen from the enclosing value (``prefix`` is e.g. ``messages[2]``)."""
        if not self.path:
            return FieldError(prefix, self.problem)
        sep = "" if self.path.startswith("[") else "."
        return FieldError(f"{prefix}{sep}{self.path}", self.problem)

    def to_invalid_request(self, wording: Wording) -> InvalidRequestError:
        problem = self.problem if isinstance(self.problem, str) else self.problem.word(wording)
        if not self.path:
            return InvalidRequestError(wording.body.format(problem=problem), param=None)
        return InvalidRequestError(wording.located.format(path=self.path, problem=problem), param=self.path)


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
    """``expected`` is worded for the message, e.g. ``"a string"``; ``value`` is what was sent."""
    return FieldError(path, _WrongType(expected, _type_name(value)))


def missing(path: str) -> FieldError:
    return FieldError(path, _Missing())


def as_object(value: object, path: str = "") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise wrong_type(path, "an object", value)
    return value


def as_array(value: object, path: str = "") -> Sequence[Any]:
    if not isinstance(value, list | tuple):
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
    if value is None or isinstance(value, str):
        return value
    raise wrong_type(key, "a string", value)


def optional_bool(obj: Mapping[str, Any], key: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise wrong_type(key, "a boolean", value)


def optional_number(obj: Mapping[str, Any], key: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number", value)
    # An int past float range (2**1100) or a NaN/infinity: no upstream can take it, and float() would raise.
    number = float(value) if isinstance(value, float) or abs(value) < _FLOAT_LIMIT else math.inf
    if not math.isfinite(number):
        raise FieldError(key, "must be a finite number.")
    return number


def optional_int(obj: Mapping[str, Any], key: str, *, minimum: int | None = None) -> int | None:
    """JSON has one number type: ``1024.0`` is accepted as an integer, ``1024.5`` is not."""
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(key, "an integer", value)
    if not -_INT64 <= value < _INT64:  # no field means that much; past 64 bits orjson cannot send it on
        raise FieldError(key, "is out of range.")
    if minimum is not None and value < minimum:
        raise FieldError(key, _TooSmall(minimum, value))
    return value


def optional_object(obj: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    return as_object(value, key)
