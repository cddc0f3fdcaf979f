"""Issue 12 over a real ``apipod serve``: ``GET /metrics`` after known traffic (parsed with prometheus_client's
own parser, counts checked against the traffic and the usage rows), ``METRICS_TOKEN``, the access log line,
and the request id in error bodies and log lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.server import BackgroundServer
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

TOKEN = "metrics-token-for-tests"
USER = [{"role": "user", "content": "hi"}]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Running:
    def __init__(self, gateway: ApipodProcess, oa: FakeOpenAI, an: FakeAnthropic) -> None:
        self.gateway, self.oa, self.an = gateway, oa, an

    def key(self, tier: str) -> tuple[str, str]:
        answer = httpx.post(
            f"{self.gateway.url}/admin/create-key", headers=self.gateway.admin, json={"name": "m", "tier": tier}
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["api_key"]), str(answer.json()["id"])

    def openai(self, key: str, request_id: str | None = None) -> openai.OpenAI:
        headers = {"x-request-id": request_id} if request_id else None
        url = self.gateway.url + "/v1"
        return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=20, default_headers=headers)

    def anthropic(self, key: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=key, max_retries=0, timeout=20)

    def scrape(self) -> Samples:
        answer = httpx.get(self.gateway.url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(answer.text)
            for sample in family.samples
        }

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.gateway.log().splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    oa, an = FakeOpenAI(), FakeAnthropic()
    oa_server, an_server = BackgroundServer(oa), BackgroundServer(an)
    oa_url, an_url = oa_server.start(), an_server.start()
    toml = catalog(
        provider("oa", "openai", oa_url + "/v1"),
        provider("an", "anthropic", an_url),
        provider("two", "openai", oa_url + "/v1", accounts=["sk-one", "sk-two"]),
        provider("three", "openai", oa_url + "/v1", accounts=["sk-three", "sk-four"]),
        models=[
            model("gpt", "oa", "gpt-up"),
            model("claude", "an", "claude-up"),
            model("gpt2", "two", "gpt-two-up"),
            model("gpt3", "three", "gpt-three-up"),
        ],
        plans=[
            plan("oa-plan", {"gpt": 1}),
            plan("an-plan", {"claude": 1}),
            plan("aliased", {"gpt": 1}, extra='aliases = [{ name = "fast", routes = [{ model = "gpt" }] }]\n'),
            plan("failover", {"gpt2": 1}),
            plan("logged", {"gpt3": 1}),
            plan("one-request", {"gpt": 1}, extra='budgets = [{ window = "day", requests = 1 }]\n'),
        ],
    )
    env = {"LOG_LEVEL": "INFO", "LOG_FORMAT": "json", "METRICS_TOKEN": TOKEN}
    gateway = ApipodProcess(catalog=toml, tmp=tmp_path_factory.mktemp("metrics"), env=env).start()
    try:
        yield Running(gateway, oa, an)
    finally:
        gateway.stop()
        oa_server.stop()
        an_server.stop()


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(value for (sample, found), value in samples.items() if sample == name and wanted <= found)


def test_metrics_count_the_traffic_that_was_sent(running: Running) -> None:
    oa_key, oa_id = running.key("oa-plan")
    an_key, _ = running.key("an-plan")
    alias_key, _ = running.key("aliased")
    failover_key, failover_id = running.key("failover")
    budget_key, _ = running.key("one-request")
    client = running.openai(oa_key)
    for _ in range(2):
        client.chat.completions.create(model="any-raw-model-name", messages=USER)  # type: ignore[arg-type]
    chunks = list(client.chat.completions.create(model="any-raw-model-name", messages=USER, stream=True))  # type: ignore[call-overload, arg-type, unused-ignore]
    assert chunks
    running.anthropic(an_key).messages.create(model="claude-x", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    running.openai(alias_key).chat.completions.create(model="fast", messages=USER)  # type: ignore[arg-type]
    running.oa.reply_error(500, "boom", kind="server_error")  # the first account fails, the second serves
    running.openai(failover_key).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    budget = running.openai(budget_key)
    budget.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        budget.chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    rows = running.gateway.wait_usage(3, key_id=oa_id)

    samples = running.scrape()
    requests = "apipod_requests_total"
    served = {"dialect": "openai", "provider": "oa", "model": "gpt", "outcome": "success"}
    assert _value(samples, requests, plan="oa-plan", route="default", **served) == 3
    assert _value(samples, requests, dialect="anthropic", plan="an-plan", route="default", outcome="success") == 1
    assert _value(samples, requests, plan="aliased", route="fast", **served) == 1
    assert _value(samples, requests, plan="failover", provider="two", model="gpt2", outcome="success") == 1
    assert _value(samples, requests, plan="one-request", outcome="success") == 1
    assert _value(samples, requests, plan="one-request", outcome="quota_exceeded", provider="") == 1
    assert _value(samples, requests) == 8
    assert _value(samples, "apipod_quota_refusals_total", plan="one-request", reason="budget") == 1
    assert _value(samples, "apipod_upstream_failovers_total", provider="two", model="gpt2") == 1
    assert _value(samples, "apipod_upstream_failovers_total") == 1
    assert _value(samples, "apipod_upstream_attempts_total", provider="two", outcome="failed") == 1
    assert _value(samples, "apipod_upstream_attempts_total", provider="two", outcome="served") == 1
    assert _value(samples, "apipod_http_responses_total", dialect="openai", status="429") == 1
    assert _value(samples, "apipod_request_duration_seconds_count", plan="oa-plan") == 3
    assert _value(samples, "apipod_time_to_first_token_seconds_count", plan="oa-plan") == 1  # the stream
    tokens = "apipod_tokens_total"
    assert _value(samples, tokens, plan="oa-plan", kind="input") == sum(r["input_tokens"] for r in rows) > 0
    assert _value(samples, tokens, plan="oa-plan", kind="output") == sum(r["output_tokens"] for r in rows) > 0
    assert _value(samples, "apipod_requests_in_flight") == 0
    assert _value(samples, "apipod_queue_depth") == 0
    assert ("apipod_accounts_cooling_down", frozenset()) in samples
    # bounded labels: no key, no raw model string
    labels = {value for (_, found) in samples for _, value in found}
    assert "any-raw-model-name" not in labels and "claude-x" not in labels
    assert not any(key in value for value in labels for key in (oa_key, failover_key, "sk-one", "sk-two"))
    assert failover_id not in labels
    # one access line per request, the stream's with its time to first token
    access = [line for line in running.log_lines() if line["logger"] == "apipod.access" and line.get("key_id") == oa_id]
    assert len(access) == 3
    assert sorted(line["ttft_ms"] is not None for line in access) == [False, False, True]


def test_metrics_token_is_required_when_set(running: Running) -> None:
    url = running.gateway.url + "/metrics"
    assert httpx.get(url).status_code == 401
    wrong = httpx.get(url, headers={"authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert "Bearer" in wrong.headers["www-authenticate"]
    assert TOKEN not in wrong.text
    assert httpx.get(url, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_access_log_line_and_request_id_in_log_lines(running: Running) -> None:
    key, key_id = running.key("logged")
    running.oa.reply_error(500, "boom", kind="server_error")
    running.openai(key, request_id="trace-me-123").chat.completions.create(model="asked", messages=USER)  # type: ignore[arg-type]
    running.gateway.wait_usage(1, key_id=key_id)
    lines = running.log_lines()
    [access] = [line for line in lines if line["logger"] == "apipod.access" and line["request_id"] == "trace-me-123"]
    assert (access["method"], access["path"], access["dialect"], access["status"]) == (
        "POST",
        "/v1/chat/completions",
        "openai",
        200,
    )
    assert (access["key_id"], access["plan"], access["model"]) == (key_id, "logged", "asked")
    assert (access["provider"], access["upstream_model"], access["outcome"]) == ("three", "gpt3", "success")
    assert access["account"].startswith("three/")
    assert [a["outcome"] for a in access["attempts"]] == ["failed", "served"]
    assert access["duration_ms"] > 0 and access["client_disconnected"] is False
    assert access["input_tokens"] > 0 and access["output_tokens"] > 0
    assert {"ttft_ms", "cached_tokens", "reasoning_tokens"} <= set(access)
    # the upstream's failure was logged while serving the request: that line carries the id too
    others = [line for line in lines if line.get("request_id") == "trace-me-123" and line["logger"] != "apipod.access"]
    assert others, "no other log line of the request carries its id"
    assert key not in running.gateway.log()


def test_request_id_in_error_bodies_of_both_dialects(running: Running) -> None:
    answer = httpx.post(
        running.gateway.url + "/v1/messages",
        headers={"x-api-key": "sk-wrong", "x-request-id": "trace-an-1", "anthropic-version": "2023-06-01"},
        json={"model": "m", "max_tokens": 5, "messages": USER},
    )
    assert answer.status_code == 401
    assert answer.headers["request-id"] == answer.headers["x-request-id"] == "trace-an-1"
    assert "server" not in answer.headers  # the server's make is nobody's business (uvicorn's header is off)
    assert "date" in answer.headers
    assert answer.json()["request_id"] == "trace-an-1"
    with pytest.raises(openai.AuthenticationError) as caught:
        running.openai("sk-wrong", request_id="trace-oa-1").chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["request_id"] == "trace-oa-1"
    assert "request-id" not in caught.value.response.headers  # the Anthropic header is for Anthropic clients
    with pytest.raises(anthropic.AuthenticationError) as an_caught:
        running.anthropic("sk-wrong").messages.create(model="m", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert an_caught.value.request_id == an_caught.value.response.headers["x-request-id"]
    lines = running.log_lines()
    assert any(line["logger"] == "apipod.access" and line["status"] == 401 for line in lines)
    assert any(line.get("request_id") == "trace-an-1" and line["logger"] == "apipod.access" for line in lines)


def test_multiprocess_mode_sums_from_the_shared_directory(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With PROMETHEUS_MULTIPROC_DIR the counters live in files there (what several workers share) and the
    page is read back from them; no token set: the page is open."""
    oa = FakeOpenAI()
    server = BackgroundServer(oa)
    url = server.start()
    tmp = tmp_path_factory.mktemp("multiproc")
    shared = tmp / "prom"
    shared.mkdir()
    toml = catalog(
        provider("oa", "openai", url + "/v1"), models=[model("gpt", "oa", "gpt-up")], plans=[plan("p", {"gpt": 1})]
    )
    try:
        with ApipodProcess(catalog=toml, tmp=tmp, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}) as gateway:
            running = Running(gateway, oa, FakeAnthropic())
            key, _ = running.key("p")
            running.openai(key).chat.completions.create(model="m", messages=USER)  # type: ignore[arg-type]
            page = httpx.get(gateway.url + "/metrics")
            assert page.status_code == 200
            samples = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(page.text)
                for s in family.samples
            }
            assert _value(samples, "apipod_requests_total", plan="p", outcome="success") == 1
            assert any(path.suffix == ".db" for path in shared.iterdir())
    finally:
        server.stop()
