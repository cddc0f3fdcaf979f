"""Logging set-up from LOG_LEVEL and LOG_FORMAT (json or console).

Every line written while a request is served carries its request id (``RequestIdFilter`` reads the request's
notes), so a complaint quoting an ``x-request-id`` finds all of that request's lines. The access log
(``apipod.access``) passes its fields as ``extra={"access": {...}}``: JSON lines get them as members,
console lines as ``key=value`` pairs.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from apipod.application.ports import REQUEST_NOTES

QUIET_LOGGERS = ("httpx", "httpcore")
"""Their per-request INFO lines print upstream URLs: DEBUG only."""


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id``: the id of the request being served, or None outside requests."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            notes = REQUEST_NOTES.get()
            record.request_id = notes.request_id if notes is not None else None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            entry["request_id"] = request_id
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            entry.update(access)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class ConsoleFormatter(logging.Formatter):
    """The classic one-line format, with the access fields and the request id appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            pairs = " ".join(f"{k}={_console(v)}" for k, v in access.items() if k != "request_id")
            line = f"{line} {pairs}"
        request_id = getattr(record, "request_id", None)
        if request_id is not None:
            line = f"{line} request_id={request_id}"
        return line


def _console(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else orjson.dumps(value).decode()
    return orjson.dumps(value).decode()


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = logging.NOTSET if root.level <= logging.DEBUG else logging.WARNING
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)
