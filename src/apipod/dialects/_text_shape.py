"""The bytes around a stream event's text: learned from one event parsed whole, used to read the events that
follow without parsing them.

PERF: an upstream repeats every byte of a text event but its text (OpenAI's id, model and start time;
Anthropic's event type, block index and delta type), and most events of an answer are such events. An event
that starts with the learned head and ends with the learned tail, with one JSON string between them, is the
learned event with another string: the decoder's answer for it is known without building its objects. The cost
is two byte comparisons and one JSON string read, against a whole document parsed into nested dicts and
looked up field by field.

What makes a shape safe to use, each decoder checks when it learns one:
- the decoder's answer for the event depends on nothing but its bytes while the shape is kept (a decoder
  whose answer depends on earlier events drops the shape whenever it parses an event whole);
- the string between head and tail is the one the decoder reads: the learned event with ``PROBE`` in its
  place (``probe``) must parse to ``PROBE`` in that field. A JSON object with the key twice, or the marker
  somewhere else, fails this.
"""

from __future__ import annotations

from typing import Any

import orjson

Shape = tuple[bytes, bytes, int, int]
"""The head, the tail, and their lengths."""

PROBE = "\x00apipod shape probe"


def shape_around(data: bytes, marker: bytes, text: str) -> Shape | None:
    """The bytes before and after the JSON string that follows ``marker`` in ``data``, when the marker occurs
    once and that string reads as ``text``; else None (a document written with spaces, for one)."""
    if data.count(marker) != 1:
        return None
    start = data.index(marker) + len(marker)
    if data[start : start + 1] != b'"':
        return None
    end = data.find(b'"', start + 1)
    while end > 0 and _escaped(data, end):
        end = data.find(b'"', end + 1)
    if end < 0 or string_in(data[start : end + 1]) != text:
        return None
    return data[:start], data[end + 1 :], start, len(data) - end - 1


def probe(shape: Shape) -> Any:
    """The learned document with ``PROBE`` as its string, parsed: where ``PROBE`` lands, the text is read."""
    return orjson.loads(shape[0] + orjson.dumps(PROBE) + shape[1])


def text_in(shape: Shape, data: bytes) -> str | None:
    """The string of an event of this shape; None when ``data`` is not one."""
    if data.startswith(shape[0]) and data.endswith(shape[1]):
        return string_in(data[shape[2] : len(data) - shape[3]])
    return None


def string_in(token: bytes) -> str | None:
    """``token`` read as one JSON string; None when it is anything else (another value, several, a cut one)."""
    try:
        value = orjson.loads(token)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is str else None


def _escaped(data: bytes, quote: int) -> bool:
    """Whether the quote at ``quote`` is escaped: preceded by an odd number of backslashes."""
    run = 0
    while data[quote - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1
