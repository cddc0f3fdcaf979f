from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

from apipod.entrypoints.http.streaming import CoalescingSend

START_SSE = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
START_JSON = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}


HEADER = (b"x-request-id", b"req_1")


class Lifetime:
    responded = False


def body(data: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


class Recorder:
    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def test_frames_of_one_turn_are_joined_and_written_when_the_turn_ends() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    await send(START_SSE)
    for frame in (b"a", b"b", b"c"):  # no suspension between them: one loop turn
        await send(body(frame))
    assert out.bodies() == [b"a"]
    await asyncio.sleep(0)  # the turn ends
    await asyncio.sleep(0)  # the joined write runs
    assert out.bodies() == [b"a", b"bc"]


async def test_frames_of_separate_turns_are_written_separately_and_in_order() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    await send(START_SSE)
    for frame in (b"1", b"2"):
        await send(body(frame))
        await asyncio.sleep(0)
    await send(body(b"3"))
    await send(body(b"4"))
    await send(body(b"", more=False))
    assert out.bodies() == [b"1", b"2", b"3", b"4", b""]
    assert out.sent[-1].get("more_body", False) is False


async def test_non_streaming_answers_pass_through_untouched() -> None:
    out = Recorder()
    send = CoalescingSend(out, HEADER, Lifetime())
    await send(START_JSON)
    await send(body(b"x"))
    await send(body(b"y"))
    assert out.bodies() == [b"x", b"y"]


async def test_every_answer_gets_the_request_id_and_marks_its_end() -> None:
    out = Recorder()
    lifetime = Lifetime()
    send = CoalescingSend(out, HEADER, lifetime)
    await send(START_JSON)
    await send(body(b"x"))
    assert not lifetime.responded
    await send(body(b"", more=False))
    assert HEADER in out.sent[0]["headers"]
    assert lifetime.responded
