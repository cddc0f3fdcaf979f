"""Strict readers for the scalar values of catalog and admin input.

cattrs' defaults coerce (``str(5)``, ``float("3")``, ``int(True)``); a catalog written by hand deserves to
hear that ``read = "30"`` is a string. Each reader takes ``(value, type)`` as a cattrs hook and raises
ValueError or TypeError with a sentence that fits after the field's path.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

NAME_MAX = 200
MAX_COUNT = 2**31 - 1  # the limits columns are 32-bit integers in PostgreSQL
MAX_TOKENS = 2**53  # budgets are bigint; beyond 2**53 a JSON number stops being exact
MAX_SECONDS = 7 * 24 * 3600.0
MAX_WEIGHT = 1e9
MAX_BYTES = 2**30


def kind_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def string(value: Any, _: Any = None) -> str:
    if not isinstance(value, str):
        raise TypeError(f"must be a string, not {kind_of(value)}")
    return value


def boolean(value: Any, _: Any = None) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, not {kind_of(value)}")
    return value


def integer(value: Any, _: Any = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"must be a whole number, not {kind_of(value)}")
    return value


def number(value: Any, _: Any = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"must be a number, not {kind_of(value)}")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return float(value)


def name(value: Any, _: Any = None) -> str:
    """A name of a provider, model, plan, alias or key: it shows up in paths, logs and answers."""
    text = string(value)
    if not text.strip():
        raise ValueError("must not be empty")
    if len(text) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise ValueError("must not contain control characters")
    return text


def count(value: Any, _: Any = None) -> int:
    """A limit (rpm, tpm, concurrency...): a positive whole number a 32-bit column holds."""
    whole = integer(value)
    if not 0 < whole <= MAX_COUNT:
        raise ValueError(f"must be a whole number from 1 to {MAX_COUNT}")
    return whole


def optional_count(value: Any, _: Any = None) -> int | None:
    return None if value is None else count(value)


def optional_tokens(value: Any, _: Any = None) -> int | None:
    if value is None:
        return None
    whole = integer(value)
    if not 0 < whole <= MAX_TOKENS:
        raise ValueError(f"must be a whole number from 1 to {MAX_TOKENS}")
    return whole


def seconds(value: Any, _: Any = None) -> float:
    amount = number(value)
    if not 0 < amount <= MAX_SECONDS:
        raise ValueError(f"must be a number of seconds above 0 and at most {MAX_SECONDS:g}")
    return amount


def weight(value: Any, _: Any = None) -> float:
    """0 is allowed: the routing rules make such a route a fallback, picked only when the others fail."""
    amount = number(value)
    if not 0 <= amount <= MAX_WEIGHT:
        raise ValueError(f"must be a number from 0 to {MAX_WEIGHT:g}")
    return amount


def byte_size(value: Any, _: Any = None) -> int:
    whole = integer(value)
    if not 0 < whole <= MAX_BYTES:
        raise ValueError(f"must be a whole number of bytes from 1 to {MAX_BYTES}")
    return whole


def url(value: Any, _: Any = None) -> str:
    """An http(s) URL with a host. Credentials belong in the accounts, never in a URL that is shown."""
    text = string(value)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("must be an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials (user:password@); put them in the accounts")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in text):
        raise ValueError("must not contain spaces or control characters")
    return text


def optional_url(value: Any, _: Any = None) -> str | None:
    return None if value is None else url(value)


def header_name(value: Any, _: Any = None) -> str:
    text = string(value)
    if not text or any(not (c.isascii() and c.isprintable()) or c in ' ()<>@,;:\\"/[]?={}' for c in text):
        raise ValueError(f"{text!r} is not a valid header name")
    return text


def header_value(value: Any, _: Any = None) -> str:
    text = string(value)
    if any(c in "\r\n\x00" for c in text):
        raise ValueError("must not contain line breaks")
    return text


def timestamp(value: Any, _: Any = None) -> datetime:
    """An RFC 3339 time with its offset (``Z`` or ``+02:00``), held in UTC so that no later conversion can
    leave the range of ``datetime``. A datetime (a database row) must carry its zone too."""
    if isinstance(value, datetime):
        parsed = value
    else:
        text = string(value)
        try:
            parsed = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an RFC 3339 timestamp such as 2026-01-31T12:00:00Z") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("needs a time zone offset (Z or +HH:MM)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None


def optional_timestamp(value: Any, _: Any = None) -> datetime | None:
    return None if value is None else timestamp(value)
