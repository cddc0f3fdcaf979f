"""Log lines carry the request id of the request being served; access fields become JSON members or
``key=value`` pairs; httpx's own request lines are quiet unless LOG_LEVEL=DEBUG."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest

from apipod.application.ports import REQUEST_NOTES, RequestNotes
from apipod.entrypoints.cli.logs import configure_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    saved_quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    stream = io.StringIO()
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
    for name, level in saved_quiet.items():
        logging.getLogger(name).setLevel(level)


def _configure(stream: io.StringIO, level: str, fmt: str) -> None:
    configure_logging(level, fmt)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def test_json_lines_carry_the_request_id_only_inside_a_request(captured: io.StringIO) -> None:
    _configure(captured, "INFO", "json")
    token = REQUEST_NOTES.set(RequestNotes("req_abc", "openai"))
    try:
        logging.getLogger("apipod.upstream").info("upstream %s: HTTP %d", "oa", 500)
        logging.getLogger("apipod.access").info("POST /x 200", extra={"access": {"status": 200, "plan": "pro"}})
    finally:
        REQUEST_NOTES.reset(token)
    logging.getLogger("apipod.http").warning("outside")
    inside, access, outside = (orjson.loads(line) for line in captured.getvalue().splitlines())
    assert (inside["request_id"], inside["message"]) == ("req_abc", "upstream oa: HTTP 500")
    assert (access["request_id"], access["status"], access["plan"]) == ("req_abc", 200, "pro")
    assert "request_id" not in outside


def test_console_lines_append_the_access_fields_and_the_request_id(captured: io.StringIO) -> None:
    _configure(captured, "INFO", "console")
    token = REQUEST_NOTES.set(RequestNotes("req_def"))
    try:
        logging.getLogger("apipod.access").info("POST /x 200", extra={"access": {"status": 200, "model": "a b"}})
    finally:
        REQUEST_NOTES.reset(token)
    line = captured.getvalue().strip()
    assert line.endswith('apipod.access: POST /x 200 status=200 model="a b" request_id=req_def')


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("DEBUG", True)])
def test_httpx_request_lines_show_only_at_debug(captured: io.StringIO, level: str, shown: bool) -> None:
    _configure(captured, level, "console")
    logging.getLogger("httpx").info("HTTP Request: POST https://upstream.example/v1/chat/completions")
    logging.getLogger("httpcore").info("connection made")
    assert ("HTTP Request" in captured.getvalue()) is shown
    assert ("connection made" in captured.getvalue()) is shown
