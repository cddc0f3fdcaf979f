"""Tool call arguments: the JSON text the canonical model carries -> the object Gemini's ``args`` wants."""

from __future__ import annotations

from typing import Any

import orjson


def parse_arguments(text: str) -> dict[str, Any]:
    """A call's JSON arguments as the object Gemini wants: ``{}`` for nothing, a light repair for cut-off
    JSON, ``{"value": x}`` around a non-object, ``{}`` when nothing can be saved (never fail the request)."""
    if not text or text.isspace():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = _repair(text)
    if isinstance(value, dict):
        return value
    return {} if value is None else {"value": value}


def _repair(text: str) -> Any:
    """Cut trailing garbage after the top-level value, or close what a truncated text left open."""
    stack: list[str] = []
    in_string = escaped = False
    for index, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
            if not stack:
                candidate = text[: index + 1]
                break
    else:
        candidate = text.rstrip().rstrip(",") + ('"' if in_string else "") + "".join(reversed(stack))
    try:
        return orjson.loads(candidate)
    except orjson.JSONDecodeError:
        return None
