"""One failure of catalog or admin input, with the path of the offending value (``budgets[1].window``).

cattrs reports a failure as a tree of exception groups whose notes name the attribute or index at each level;
``wire_error`` walks that tree to the first leaf and turns it into a path and a sentence.
"""

from __future__ import annotations

import attrs
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)


class WireError(ValueError):
    """``field`` is the path of the offending value, relative to the structured document ("" for the
    document itself); ``reason`` says what is wrong with it, in words safe to show the caller."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


@attrs.frozen
class _Leaf:
    path: str
    error: BaseException


def _join(path: str, segment: str | int, *, key: bool = False) -> str:
    if isinstance(segment, int):
        return f"{path}[{segment}]"
    if key:  # a key of a table of free-form names (headers)
        return f'{path}["{segment}"]'
    return f"{path}.{segment}" if path else segment


def _first_leaf(error: BaseException, path: str) -> _Leaf:
    if isinstance(error, ClassValidationError | IterableValidationError):
        for sub in error.exceptions:
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    return _first_leaf(sub, _join(path, note.name))
                if isinstance(note, IterableValidationNote):
                    return _first_leaf(sub, _join(path, note.index, key=isinstance(note.index, str)))
            return _first_leaf(sub, path)
    return _Leaf(path, error)


def _reason(error: BaseException) -> str:
    if isinstance(error, WireError):
        return error.reason
    if isinstance(error, KeyError):
        return "is required"
    if isinstance(error, ValueError | TypeError) and error.args and isinstance(error.args[0], str):
        return error.args[0]
    return "is not valid"


def wire_error(error: BaseException, root: str = "") -> WireError:
    """The first failure in a cattrs error tree, as a WireError whose field starts at ``root``."""
    leaf = _first_leaf(error, root)
    path, cause = leaf.path, leaf.error
    if isinstance(cause, ForbiddenExtraKeysError):
        extra = sorted(cause.extra_fields)
        return WireError(_join(path, extra[0]), f"unknown field(s) {', '.join(extra)}")
    if isinstance(cause, WireError) and cause.field:
        path = f"{path}{cause.field}" if cause.field.startswith("[") or not path else f"{path}.{cause.field}"
    return WireError(path, _reason(cause))
