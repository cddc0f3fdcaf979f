"""A minimal upstream for benchmarks: fixed, pre-encoded answers, 100-chunk streams, no logic.

It speaks three dialects, chosen by the path:

- ``POST .../chat/completions`` (any other path too): OpenAI chat completions; streamed when the body says
  ``"stream": true``.
- ``POST .../responses``: the OpenAI Responses API; streamed when the body says ``"stream": true`` (a
  ``response.created`` ... ``response.completed`` stream with 100 ``response.output_text.delta`` events).
- ``POST /v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``: Gemini (Google AI
  Studio); 100 ``data:`` chunks, each with the running ``usageMetadata`` as Gemini sends it, the last with
  ``finishReason: STOP``. With ``--gemini-usage-last`` only the last chunk carries ``usageMetadata`` (to
  measure what the per-chunk usage costs).

Run: python scripts/bench_upstream.py PORT [--gemini-usage-last]
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn

CHUNKS = 100
TEXT = "hello " * 20

# --- OpenAI chat completions -------------------------------------------------------------------------------

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "bench-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 20, "total_tokens": 32},
    }
)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(body) + b"\n\n"


STREAM = (
    [_chunk({"role": "assistant", "content": ""})]
    + [_chunk({"content": f"tok{i} "}) for i in range(CHUNKS)]
    + [
        _chunk({}, "stop"),
        b"data: "
        + orjson.dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "bench-model",
                "choices": [],
                "usage": {"prompt_tokens": 12, "completion_tokens": CHUNKS, "total_tokens": 12 + CHUNKS},
            }
        )
        + b"\n\n",
        b"data: [DONE]\n\n",
    ]
)

# --- OpenAI Responses API (docs/protocols/openai-responses.md §5, §6.3, §6.4) ------------------------------

_MSG_ID = "msg_bench"


def _response(status: str, output: list[Any], usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_bench",
        "object": "response",
        "created_at": 1,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "bench-model",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _responses_usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 12 + output_tokens,
    }


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message(text: str, status: str) -> dict[str, Any]:
    content = [_text_part(text)] if status == "completed" else []
    return {"id": _MSG_ID, "type": "message", "status": status, "content": content, "role": "assistant"}


RESPONSE = orjson.dumps(_response("completed", [_message(TEXT, "completed")], _responses_usage(20)))


def _responses_stream() -> list[bytes]:
    text = "".join(f"tok{i} " for i in range(CHUNKS))
    done = _message(text, "completed")
    where = {"item_id": _MSG_ID, "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response("in_progress", [], None)},
        {"type": "response.in_progress", "response": _response("in_progress", [], None)},
        {"type": "response.output_item.added", "output_index": 0, "item": _message("", "in_progress")},
        {"type": "response.content_part.added", **where, "part": _text_part("")},
        *({"type": "response.output_text.delta", **where, "delta": f"tok{i} ", "logprobs": []} for i in range(CHUNKS)),
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _text_part(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": done},
        {"type": "response.completed", "response": _response("completed", [done], _responses_usage(CHUNKS))},
    ]
    frames = []
    for sequence, event in enumerate(events):
        data = {"type": event["type"], "sequence_number": sequence, **event}
        frames.append(b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n")
    return frames


RESPONSES_STREAM = _responses_stream()

# --- Gemini generateContent / streamGenerateContent?alt=sse (tests/fixtures/gemini*/) -------------------------


def _anthropic_event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


ANTHROPIC_STREAM = [
    _anthropic_event(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_bench",
                "type": "message",
                "role": "assistant",
                "model": "bench-claude",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 1},
            },
        },
    ),
    _anthropic_event(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    *(
        _anthropic_event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}},
        )
        for i in range(CHUNKS)
    ),
    _anthropic_event("content_block_stop", {"type": "content_block_stop", "index": 0}),
    _anthropic_event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": CHUNKS},
        },
    ),
    _anthropic_event("message_stop", {"type": "message_stop"}),
]
"""An Anthropic Messages stream of 100 text deltas (``bench_wrk.py``'s ``messages-stream``)."""


def _gemini(text: str, output_tokens: int, finish: bool) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": 12 + output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
        },
        "modelVersion": "bench-model",
        "responseId": "benchResp",
    }


def _gemini_chunk(i: int, usage_every_chunk: bool) -> bytes:
    last = i == CHUNKS - 1
    body = _gemini(f"tok{i} ", i + 1, finish=last)
    if not (usage_every_chunk or last):
        del body["usageMetadata"]
    return b"data: " + orjson.dumps(body) + b"\r\n\r\n"


GEMINI = orjson.dumps(_gemini(TEXT, 20, finish=True))
GEMINI_STREAM = [_gemini_chunk(i, usage_every_chunk=True) for i in range(CHUNKS)]
GEMINI_STREAM_USAGE_LAST = [_gemini_chunk(i, usage_every_chunk=False) for i in range(CHUNKS)]

USAGE_LAST = "--gemini-usage-last" in sys.argv  # the variant: usageMetadata on the last Gemini chunk only
Scope = MutableMapping[str, Any]
Send = Callable[[Scope], Awaitable[None]]


async def _json(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _sse(send: Send, frames: list[bytes]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
    for frame in frames:
        await send({"type": "http.response.body", "body": frame, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def app(scope: Scope, receive: Callable[[], Awaitable[Scope]], send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path: str = scope["path"]
    if path.endswith(":streamGenerateContent"):
        await _sse(send, GEMINI_STREAM_USAGE_LAST if USAGE_LAST else GEMINI_STREAM)
        return
    if path.endswith(":generateContent"):
        await _json(send, GEMINI)
        return
    stream = b'"stream":true' in body or b'"stream": true' in body
    if path.endswith("/responses"):
        await (_sse(send, RESPONSES_STREAM) if stream else _json(send, RESPONSE))
        return
    await (_sse(send, STREAM) if stream else _json(send, COMPLETION))


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
