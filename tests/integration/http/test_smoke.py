"""The harness itself: a real apipod process over a fake OpenAI upstream, driven by the official SDK."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider


def test_openai_sdk_through_apipod_to_a_fake_openai(tmp_path: Path) -> None:
    fake = FakeOpenAI()
    with serve(fake) as upstream_url:
        toml = catalog(
            provider("up", "openai", upstream_url + "/v1"),
            models=[model("mini", "up", "gpt-4o-mini")],
            plans=[plan("pro", {"mini": 1})],
        )
        with ApipodProcess(catalog=toml, tmp=tmp_path) as gateway:
            key = gateway.create_key("pro")
            client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
            answer = client.chat.completions.create(
                model="anything", messages=[{"role": "user", "content": "hello there"}]
            )
            assert answer.model == "anything"
            assert answer.choices[0].message.content
            sent = fake.last.body
            assert sent["model"] == "gpt-4o-mini"
            [row] = gateway.wait_usage(1)
            assert row["routed_model"] == "mini"
            assert row["input_tokens"] == answer.usage.prompt_tokens  # type: ignore[union-attr]
            assert row["output_tokens"] == answer.usage.completion_tokens  # type: ignore[union-attr]
