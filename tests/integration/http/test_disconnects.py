"""Issue 5: clients that go away mid-stream leave no slot behind, through a real ``apipod serve`` process.

Several hundred streaming requests (OpenAI and Anthropic clients, one key) are closed by their clients after
a few chunks of a slow upstream stream, while every concurrency limit is tight: the gateway's
(``MAX_CONCURRENT_REQUESTS``), the upstream model's (``MODEL_CONCURRENCY_LIMIT``) and the key's plan
(``max_concurrency``), all N. Afterwards N requests must all reach the upstream at once: one leaked slot of
any of the three would hold one of them back until another finished.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.fake_openai import FakeOpenAI, openai_frames
from tests.fakes.scripted import Reply
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

N = 20  # every concurrency limit
STREAMS = 300
WORDS = 40  # words of the upstream stream; the first three arrive with the role chunk in one write
PAUSE = 3.0  # the upstream's silence after that first write, and between the writes after it
HOLD = 2.0  # how long each of the final N requests holds its slots at the upstream


def slow_frames() -> list[bytes]:
    head = {"id": "chatcmpl-slow", "object": "chat.completion.chunk", "created": 1727346142, "model": "gpt-4o-mini"}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks: list[Any] = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"content": f"word{i} "}) for i in range(WORDS)]
    chunks.append(chunk({}, "stop"))
    chunks.append({**head, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": WORDS}})
    frames = openai_frames(chunks)
    return [b"".join(frames[:4]), *frames[4:]]


def completion(text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-held",
        "object": "chat.completion",
        "created": 1727346142,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


async def stream_then_leave(client: httpx.AsyncClient, url: str, key: str, n: int) -> int:
    """Stream (OpenAI for even ``n``, Anthropic for odd), read 1 to 3 text chunks, then close the connection.
    Returns the text chunks read."""
    wanted = 1 + n % 3
    text = {"role": "user", "content": f"stream number {n}"}
    if n % 2 == 0:
        path, marker = "/v1/chat/completions", '"content":"word'
        headers = {"authorization": f"Bearer {key}"}
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [text], "stream": True}
    else:
        path, marker = "/v1/messages", '"text_delta"'
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        body = {"model": "claude-test", "max_tokens": 512, "messages": [text], "stream": True}
    seen = 0
    async with client.stream("POST", url + path, json=body, headers=headers) as answer:
        assert answer.status_code == 200, await answer.aread()
        async for line in answer.aiter_lines():
            if marker in line:
                seen += 1
                if seen == wanted:
                    break
    return seen


async def test_clients_leaving_mid_stream_leave_no_slot_held(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        toml = catalog(
            provider("up", "openai", upstream_url + "/v1"),
            models=[model("mini", "up", "gpt-4o-mini")],
            plans=[plan("tight", {"mini": 1}, extra=f"max_concurrency = {N}\n")],
        )
        env = {
            "MAX_CONCURRENT_REQUESTS": str(N),
            "MODEL_CONCURRENCY_LIMIT": str(N),
            "QUEUE_WAIT_SECONDS": "60",  # the storm queues behind its own limits; nobody may time out
        }
        with ApipodProcess(catalog=toml, tmp=tmp_path, env=env) as gateway:
            created = httpx.post(
                gateway.url + "/admin/create-key", headers=gateway.admin, json={"name": "storm", "tier": "tight"}
            ).json()
            key_id, key = created["id"], created["api_key"]
            for _ in range(STREAMS):
                fake.reply_sse(slow_frames(), delay=PAUSE)

            limits = httpx.Limits(max_connections=STREAMS + N)
            async with httpx.AsyncClient(limits=limits, timeout=60) as client:
                read = await asyncio.gather(*[stream_then_leave(client, gateway.url, key, n) for n in range(STREAMS)])
                assert read == [1 + n % 3 for n in range(STREAMS)]

                # The upstream saw each client leave at once: during its first pause, not when it wrote again.
                assert await fake.wait_for(
                    lambda: sum(o.disconnected for o in fake.outcomes) == STREAMS, PAUSE - 1.0
                ), f"{sum(o.disconnected for o in fake.outcomes)} of {STREAMS} upstream calls cancelled"
                assert len(fake.outcomes) == STREAMS
                assert not any(o.completed for o in fake.outcomes)
                assert {o.frames_sent for o in fake.outcomes} == {1}

                # Every book closed: one usage row per stream, each cancelled with its estimated usage.
                rows = gateway.wait_usage(STREAMS, timeout=20, key_id=key_id, limit="1000")
                assert len(rows) == STREAMS
                assert {r["status"] for r in rows} == {"cancelled"}
                for row in rows:
                    assert row["output_tokens"] > 0 and row["input_tokens"] > 0, row
                    assert row["token_count"] == row["input_tokens"] + row["output_tokens"]
                    assert row["routed_model"] == "mini"

                # N requests at once: each must get every slot it needs without waiting for another.
                for _ in range(N):
                    fake.hang(HOLD, then=Reply(body=completion("held")))
                start = time.monotonic()
                calls = [
                    asyncio.create_task(
                        client.post(
                            gateway.url + "/v1/chat/completions",
                            json={"model": "m", "messages": [{"role": "user", "content": "now"}]},
                            headers={"authorization": f"Bearer {key}"},
                        )
                    )
                    for _ in range(N)
                ]
                all_in = await fake.wait_for(lambda: len(fake.requests) == STREAMS + N, HOLD - 0.5)
                in_flight = len(fake.requests) - STREAMS
                answers = await asyncio.gather(*calls)
                elapsed = time.monotonic() - start

            assert all_in, f"only {in_flight} of {N} requests reached the upstream at once: slots are held"
            assert [a.status_code for a in answers] == [200] * N, [a.text for a in answers if a.status_code != 200]
            assert all(a.json()["choices"][0]["message"]["content"] == "held" for a in answers)
            assert elapsed < HOLD + 1.0, elapsed  # one round of HOLD, not two
