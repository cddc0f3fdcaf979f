"""Shared set-up of the core end-to-end suites (test_openai_clients, test_anthropic_clients,
test_cross_dialect, test_error_answers): one real apipod process per module, in front of a fake
OpenAI-compatible and a fake Anthropic-compatible upstream on real sockets, with helpers for keys, usage
rows and the official SDK clients.

The catalog every module gets (extra tables may be added per module):

- provider ``oa`` (openai) -> model ``gpt`` (upstream ``gpt-4o-up``) -> plan ``oa-plan``
- provider ``an`` (anthropic) -> model ``claude`` (upstream ``claude-up``) -> plan ``an-plan``
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import attrs
import httpx
import openai

from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

Extra = dict[str, list[str]]

OA_UPSTREAM_MODEL = "gpt-4o-up"
AN_UPSTREAM_MODEL = "claude-up"


@attrs.define
class Stack:
    """A running apipod with its two fake upstreams."""

    gateway: ApipodProcess
    oa: FakeOpenAI
    an: FakeAnthropic
    oa_url: str
    an_url: str

    @property
    def url(self) -> str:
        return self.gateway.url

    def reset(self) -> None:
        """Between tests: no leftover scripted replies, empty request logs."""
        for fake in (self.oa, self.an):
            fake.replies.clear()
            fake.requests.clear()
            fake.outcomes.clear()

    # -- keys and usage ------------------------------------------------------------------------------

    def new_key(self, tier: str, **extra: Any) -> tuple[str, str]:
        """A fresh key on ``tier``: (api_key, key id). One key per test keeps usage rows apart."""
        answer = httpx.post(
            f"{self.url}/admin/create-key",
            headers=self.gateway.admin,
            json={"name": "core-tests", "tier": tier, **extra},
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        return str(body["api_key"]), str(body["id"])

    def usage_rows(self, key_id: str, count: int, *, settle: float = 0.2) -> list[dict[str, Any]]:
        """Exactly ``count`` usage rows of the key (oldest first), after waiting for them; a short extra
        wait makes sure no surplus row shows up."""
        rows = self.gateway.wait_usage(count, key_id=key_id)
        if settle:
            time.sleep(settle)
            rows = self.gateway.usage(key_id=key_id)
        assert len(rows) == count, rows
        return list(reversed(rows))

    def usage_row(self, key_id: str) -> dict[str, Any]:
        [row] = self.usage_rows(key_id, 1)
        return row

    # -- clients -------------------------------------------------------------------------------------

    def openai(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=20)

    def anthropic(self, key: str, **options: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, timeout=20, **options)


def base_catalog(oa_url: str, an_url: str, *, providers: list[str], models: list[str], plans: list[str]) -> str:
    return catalog(
        provider("oa", "openai", oa_url + "/v1"),
        provider("an", "anthropic", an_url),
        *providers,
        models=[model("gpt", "oa", OA_UPSTREAM_MODEL), model("claude", "an", AN_UPSTREAM_MODEL), *models],
        plans=[plan("oa-plan", {"gpt": 1}), plan("an-plan", {"claude": 1}), *plans],
    )


def start_stack(tmp: Path, *, extra: Callable[[str, str], Extra] | None = None) -> Iterator[Stack]:
    """A generator for a module-scoped fixture: yields the running stack, stops everything after.

    ``extra(oa_url, an_url)`` adds catalog tables (``providers``, ``models``, ``plans`` lists of rendered
    bodies) that need the fakes' addresses."""
    oa, an = FakeOpenAI(), FakeAnthropic()
    oa_server, an_server = BackgroundServer(oa), BackgroundServer(an)
    oa_url, an_url = oa_server.start(), an_server.start()
    try:
        added = extra(oa_url, an_url) if extra is not None else {}
        toml = base_catalog(
            oa_url,
            an_url,
            providers=added.get("providers", []),
            models=added.get("models", []),
            plans=added.get("plans", []),
        )
        gateway = ApipodProcess(catalog=toml, tmp=tmp).start()
        try:
            yield Stack(gateway=gateway, oa=oa, an=an, oa_url=oa_url, an_url=an_url)
        finally:
            gateway.stop()
    finally:
        oa_server.stop()
        an_server.stop()
