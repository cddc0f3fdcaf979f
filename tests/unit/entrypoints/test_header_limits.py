"""Request headers are limited in count and size: 431 in the caller's dialect (issue 9, finding 10)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apipod.entrypoints.http.header_limits import (
    MAX_HEADER_BYTES,
    MAX_HEADER_LINE_BYTES,
    MAX_HEADERS,
    HeaderLimits,
    Limits,
)

Headers = list[tuple[bytes, bytes]]


class App:
    def __init__(self) -> None:
        self.called = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def run(path: str, headers: Headers, scope_type: str = "http") -> tuple[App, list[dict[str, Any]]]:
    app, sent = App(), []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": scope_type, "method": "POST", "path": path, "headers": headers}
    await HeaderLimits(app)(scope, receive, send)
    return app, sent


def many(n: int) -> Headers:
    return [(f"x-h{i}".encode(), b"v") for i in range(n)]


async def test_ordinary_headers_reach_the_app() -> None:
    headers = [(b"authorization", b"Bearer " + b"k" * 60), (b"content-type", b"application/json"), *many(20)]
    app, sent = await run("/v1/chat/completions", headers)
    assert app.called == 1
    assert sent[0]["status"] == 200


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        (many(5_000), f"more than {MAX_HEADERS} request headers"),
        (many(MAX_HEADERS + 1), f"more than {MAX_HEADERS} request headers"),
        ([(b"x-big", b"a" * 1_000_000)], "a request header of 1000005 bytes"),
        ([(b"x-big", b"a" * MAX_HEADER_LINE_BYTES)], f"(at most {MAX_HEADER_LINE_BYTES})"),
        ([(f"x-{i}".encode(), b"a" * 10_000) for i in range(4)], f"over {MAX_HEADER_BYTES} bytes in all"),
    ],
)
async def test_too_many_or_too_large_is_431_before_the_app(headers: Headers, fragment: str) -> None:
    app, sent = await run("/v1/chat/completions", headers)
    assert app.called == 0
    start, body = sent
    assert start["status"] == 431
    assert (b"content-type", b"application/json") in start["headers"]
    error = orjson.loads(body["body"])["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "request_header_fields_too_large"
    assert fragment in error["message"]
    assert "aaaa" not in error["message"]  # sizes, never the values


async def test_the_answer_is_in_the_callers_dialect() -> None:
    _, sent = await run("/v1/messages", many(200))
    assert orjson.loads(sent[1]["body"])["type"] == "error"
    assert orjson.loads(sent[1]["body"])["error"]["type"] == "request_too_large"
    _, sent = await run("/v1/models", [(b"anthropic-version", b"2023-06-01"), *many(200)])
    assert orjson.loads(sent[1]["body"])["type"] == "error"
    _, sent = await run("/admin/keys", many(200))
    assert orjson.loads(sent[1]["body"]) == {
        "error": {
            "type": "invalid_request",
            "message": f"Request header fields too large: more than {MAX_HEADERS} request headers.",
        }
    }


async def test_limits_at_the_bound_are_accepted() -> None:
    assert Limits().problem(many(MAX_HEADERS)) is None
    assert Limits().problem([(b"x", b"a" * (MAX_HEADER_LINE_BYTES - 1))]) is None
    app, _ = await run("/v1/chat/completions", many(MAX_HEADERS))
    assert app.called == 1


def test_headers_over_one_lines_limit_in_all_are_still_checked_one_by_one() -> None:
    two_large = [(b"x-a", b"a" * 10_000), (b"x-b", b"b" * 10_000)]  # 20 KB: past a line's limit, within the total
    assert Limits().problem(two_large) is None
    assert Limits(max_line_bytes=9_000).problem(two_large) == "a request header of 10003 bytes (at most 9000)"
    assert Limits(max_total_bytes=15_000).problem(two_large) == "request headers over 15000 bytes in all"


@given(
    headers=st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.binary(max_size=400)), max_size=12),
    limits=st.builds(
        Limits,
        max_headers=st.integers(1, 12),
        max_line_bytes=st.integers(1, 500),
        max_total_bytes=st.integers(1, 2_000),
    ),
)
def test_the_quick_check_of_a_header_list_agrees_with_the_header_by_header_one(
    headers: Headers, limits: Limits
) -> None:
    # a list takes the quick path; the same headers as an iterator are checked one by one
    assert limits.problem(headers) == limits.problem(iter(headers))


async def test_other_scopes_pass_through() -> None:
    app, _ = await run("/", many(5_000), scope_type="lifespan")
    assert app.called == 1
