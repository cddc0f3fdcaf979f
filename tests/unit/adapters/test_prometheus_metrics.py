"""The Prometheus adapter: what the port reports becomes samples with bounded labels; gauges are read from
their sources when the page is rendered."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from apipod.adapters.metrics.prometheus import PrometheusPage, PrometheusTelemetry, StateCollector
from apipod.application.ports import FinishedRequest
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
