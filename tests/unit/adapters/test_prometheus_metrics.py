"""The Prometheus adapter: what the port reports becomes samples with bounded labels; gauges are read from
their sources when the page is rendered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import attrs
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

from apipod.adapters.metrics import prometheus
from apipod.adapters.metrics.prometheus import (
    DURATION_BUCKETS,
    TTFT_BUCKETS,
    PrometheusPage,
    PrometheusTelemetry,
    StateCollector,
)
from apipod.application.ports import FinishedRequest
from apipod.bootstrap.container import build_container
from apipod.bootstrap.settings import Settings
from apipod.domain.chat import Usage
from apipod.domain.usage import Attempt, AttemptOutcome, UsageStatus


class Backlog:
    depth = 7
    rejected = 2
    dropped = 1


class Outages:
    outages = 3


def _finished(status: UsageStatus = UsageStatus.SUCCESS) -> FinishedRequest:
    return FinishedRequest(
        request_id="req_1",
        key_id="key_1",
        plan="pro",
        route="default",
        requested_model="whatever-the-client-said",
        provider="up1",
        model="a",
        account="up1/#0",
        status=status,
        usage=Usage(input_tokens=10, output_tokens=4, cached_input_tokens=3, reasoning_tokens=2),
        duration=0.5,
        ttft=0.1,
        attempts=(
            Attempt(model="a", account="up1/#1", outcome=AttemptOutcome.FAILED, reason="UpstreamUnavailableError"),
            Attempt(model="a", account="up1/#0", outcome=AttemptOutcome.SERVED),
        ),
    )


def _samples(page: PrometheusPage) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body, content_type = page.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def test_reports_become_counters_and_histograms_and_gauges_are_read_at_scrape() -> None:
    telemetry = PrometheusTelemetry(CollectorRegistry())
    in_flight = [2]
    state = StateCollector(
        in_flight=lambda: in_flight[0],
        queue_depth=lambda: 1,
        resting=lambda: (3, 1),
        usage_log=Backlog(),
        limits=Outages(),
    )
    page = PrometheusPage(telemetry, state, None)
    telemetry.request_finished(_finished(), "anthropic")
    telemetry.request_finished(_finished(UsageStatus.QUOTA_EXCEEDED), "anthropic")
    telemetry.response_sent("anthropic", 200)
    telemetry.failover("up1", "a", "UpstreamUnavailableError")
    telemetry.queue_wait(0.2, served=True)
    telemetry.refused("pro", "budget")
    samples = _samples(page)
    route = {("dialect", "anthropic"), ("plan", "pro"), ("route", "default")}
    served = frozenset(route | {("provider", "up1"), ("model", "a"), ("outcome", "success")})
    assert samples[("apipod_requests_total", served)] == 1
    assert samples[("apipod_request_duration_seconds_count", frozenset(route))] == 2
    tokens = {("plan", "pro"), ("provider", "up1"), ("model", "a")}
    assert samples[("apipod_tokens_total", frozenset(tokens | {("kind", "cached")}))] == 6
    assert samples[("apipod_tokens_total", frozenset(tokens | {("kind", "reasoning")}))] == 4
    attempts = {("provider", "up1"), ("model", "a")}
    assert samples[("apipod_upstream_attempts_total", frozenset(attempts | {("outcome", "failed")}))] == 2
    failover = frozenset(attempts | {("reason", "UpstreamUnavailableError")})
    assert samples[("apipod_upstream_failovers_total", failover)] == 1
    assert samples[("apipod_http_responses_total", frozenset({("dialect", "anthropic"), ("status", "200")}))] == 1
    assert samples[("apipod_quota_refusals_total", frozenset({("plan", "pro"), ("reason", "budget")}))] == 1
    assert samples[("apipod_queue_wait_seconds_count", frozenset({("served", "true")}))] == 1
    assert samples[("apipod_requests_in_flight", frozenset())] == 2
    assert samples[("apipod_queue_depth", frozenset())] == 1
    assert samples[("apipod_accounts_cooling_down", frozenset())] == 3
    assert samples[("apipod_accounts_unhealthy", frozenset())] == 1
    assert samples[("apipod_usage_writer_queue_depth", frozenset())] == 7
    assert samples[("apipod_usage_write_failures_total", frozenset({("kind", "rejected")}))] == 2
    assert samples[("apipod_redis_outages_total", frozenset())] == 3
    assert all("whatever-the-client-said" not in dict(labels).values() for _, labels in samples)
    in_flight[0] = 0
    assert _samples(page)[("apipod_requests_in_flight", frozenset())] == 0


def test_sources_without_a_backlog_add_no_usage_writer_metrics() -> None:
    telemetry = PrometheusTelemetry(CollectorRegistry())
    state = StateCollector(
        in_flight=lambda: 0, queue_depth=lambda: 0, resting=lambda: (0, 0), usage_log=object(), limits=object()
    )
    names = {name for name, _ in _samples(PrometheusPage(telemetry, state, None))}
    assert "apipod_requests_in_flight" in names
    assert not any(
        name.startswith(("apipod_usage_writer", "apipod_usage_write_failures", "apipod_redis")) for name in names
    )


def test_the_tallies_give_the_page_observe_and_inc_would() -> None:
    """Reports are added up before they reach prometheus_client (``flush``); the page must read as if every
    report had been observed and incremented one by one, bucket bounds included (a value on a bound falls in
    that bucket, a value past the last in +Inf), and a report without a time to first token observes none."""
    telemetry = PrometheusTelemetry(CollectorRegistry())
    reference = CollectorRegistry()
    duration = Histogram("d", "", ("dialect",), buckets=DURATION_BUCKETS, registry=reference)
    ttft = Histogram("t", "", ("dialect",), buckets=TTFT_BUCKETS, registry=reference)
    durations = [0.0, 0.05, 0.050001, 0.5, 1.0, 7.5, 600.0, 600.5, 0.2, 0.2]
    ttfts: list[float | None] = [0.05, None, 0.1, 120.0, 121.0, 0.0, None, 3.0, 0.01, 0.01]
    for seconds, first in zip(durations, ttfts, strict=True):
        telemetry.request_finished(attrs.evolve(_finished(), duration=seconds, ttft=first), "openai")
        duration.labels("openai").observe(seconds)
        if first is not None:
            ttft.labels("openai").observe(first)
        telemetry.response_sent("openai", 200)
    telemetry.response_sent("openai", 429)
    telemetry.flush()

    def read(registry: CollectorRegistry, name: str) -> dict[tuple[str, str], float]:
        return {
            (sample.name.removeprefix(name), sample.labels.get("le", "")): sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name.startswith(name + "_") and not sample.name.endswith("_created")
        }

    assert read(telemetry.registry, "apipod_request_duration_seconds") == read(reference, "d")
    assert read(telemetry.registry, "apipod_time_to_first_token_seconds") == read(reference, "t")
    value = telemetry.registry.get_sample_value
    assert value("apipod_http_responses_total", {"dialect": "openai", "status": "200"}) == 10
    assert value("apipod_http_responses_total", {"dialect": "openai", "status": "429"}) == 1
    tokens = {"plan": "pro", "provider": "up1", "model": "a"}
    assert value("apipod_tokens_total", {**tokens, "kind": "input"}) == 100
    assert value("apipod_upstream_attempts_total", {"provider": "up1", "model": "a", "outcome": "served"}) == 10


async def test_reports_reach_the_metrics_within_the_flush_time_without_a_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In multiprocess mode another worker's page reads this worker's files: the tallies must reach them on a
    timer, not only when this worker is scraped."""
    monkeypatch.setattr(prometheus, "FLUSH_SECONDS", 0.01)
    telemetry = PrometheusTelemetry(CollectorRegistry())
    count = {"dialect": "openai", "status": "200"}
    telemetry.response_sent("openai", 200)
    telemetry.request_finished(_finished(), "openai")
    assert telemetry.registry.get_sample_value("apipod_http_responses_total", count) in (None, 0)
    await asyncio.sleep(0.05)
    assert telemetry.registry.get_sample_value("apipod_http_responses_total", count) == 1
    served = {"dialect": "openai", "plan": "pro", "route": "default", "provider": "up1", "model": "a"}
    assert telemetry.registry.get_sample_value("apipod_requests_total", {**served, "outcome": "success"}) == 1
    telemetry.response_sent("openai", 200)  # a new timer after the first flush
    await asyncio.sleep(0.05)
    assert telemetry.registry.get_sample_value("apipod_http_responses_total", count) == 2


async def test_closing_the_container_moves_the_last_reports_into_the_metrics(tmp_path: Path) -> None:
    container = build_container(Settings(database_url=f"sqlite:///{tmp_path}/a.db"))
    try:
        telemetry = await container.get(PrometheusTelemetry)
        telemetry.response_sent("anthropic", 200)
    finally:
        await container.close()
    labels = {"dialect": "anthropic", "status": "200"}
    assert telemetry.registry.get_sample_value("apipod_http_responses_total", labels) == 1
