"""A structural check of canonical objects: every attrs field holds a value of its declared type.

The codecs promise "a valid canonical object or a domain error"; a decoder that copies a wire value of the
wrong JSON type into a field (an int where a ``str`` is declared) breaks every consumer downstream, so
the property tests check decoded objects with this, recursively.
"""

from __future__ import annotations

import enum
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs

import apipod.domain.chat
import apipod.domain.stream

_RESOLVED: set[type] = set()


def _hints(cls: type) -> dict[str, Any]:
    module = vars(apipod.domain.stream) if cls.__module__.endswith("stream") else vars(apipod.domain.chat)
    return typing.get_type_hints(cls, globalns=dict(module))


def problems(value: object, path: str = "value") -> list[str]:
    """Every field of ``value`` (an attrs instance) whose value does not match its annotation."""
    found: list[str] = []
    cls = type(value)
    if not attrs.has(cls):
        return [f"{path}: {cls.__name__} is not a canonical (attrs) object"]
    hints = _hints(cls)
    for field in attrs.fields(cls):
        _check(getattr(value, field.name), hints[field.name], f"{path}.{field.name}", found)
    return found


def _check(value: object, hint: Any, path: str, found: list[str]) -> None:
    origin = typing.get_origin(hint)
    if hint is Any:
        return
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        for option in options:
            trial: list[str] = []
            _check(value, option, path, trial)
            if not trial:
                return
        found.append(f"{path}: {value!r} matches none of {hint}")
        return
    if hint is type(None):
        if value is not None:
            found.append(f"{path}: expected None, got {value!r}")
        return
    if origin is tuple:
        if not isinstance(value, tuple):
            found.append(f"{path}: expected a tuple, got {type(value).__name__}")
            return
        (item_hint, _) = typing.get_args(hint)
        for index, item in enumerate(value):
            _check(item, item_hint, f"{path}[{index}]", found)
        return
    if origin is frozenset:
        if not isinstance(value, frozenset):
            found.append(f"{path}: expected a frozenset, got {type(value).__name__}")
            return
        (item_hint,) = typing.get_args(hint)
        for item in value:
            _check(item, item_hint, f"{path}<item>", found)
        return
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        if not isinstance(value, Mapping):
            found.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return
        key_hint, item_hint = typing.get_args(hint)
        for key, item in value.items():
            _check(key, key_hint, f"{path}<key>", found)
            _check(item, item_hint, f"{path}[{key!r}]", found)
        return
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        if not isinstance(value, hint):
            found.append(f"{path}: expected {hint.__name__}, got {value!r}")
        return
    if hint is bool:
        if not isinstance(value, bool):
            found.append(f"{path}: expected bool, got {value!r}")
        return
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            found.append(f"{path}: expected int, got {value!r}")
        return
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            found.append(f"{path}: expected a finite float, got {value!r}")
        return
    if hint is str:
        if not isinstance(value, str):
            found.append(f"{path}: expected str, got {value!r}")
        return
    if isinstance(hint, type) and attrs.has(hint):
        if not isinstance(value, hint):
            found.append(f"{path}: expected {hint.__name__}, got {type(value).__name__}")
            return
        found.extend(problems(value, path))
        return
    raise AssertionError(f"{path}: the checker does not know the annotation {hint!r}")


def assert_canonical(value: object) -> None:
    found = problems(value)
    assert not found, "\n".join(found)
