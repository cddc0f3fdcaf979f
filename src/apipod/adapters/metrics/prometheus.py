"""The Telemetry port over ``prometheus_client``, and the ``/metrics`` page.

Labels come from bounded sets only: the client's dialect, names from the catalog (plan, route alias,
provider, upstream model), outcomes and statuses; never a key, a secret or a client's free text.

Counters and histograms are updated when the pipeline reports; the gauges (in flight, queue depth, resting
accounts, usage-writer backlog) are read at scrape time by ``StateCollector``. With
``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps counters and histograms in files shared by the
workers and ``MultiProcessCollector`` sums them; the gauges then describe the worker that answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from apipod.application.ports import FinishedRequest

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Children:
    """``metric.labels(*values)`` memoised: prometheus_client validates and locks on every call, a dict
    lookup does not (PERF: the label sets repeat on every request)."""

    __slots__ = ("_cache", "_metric")

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._cache: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._cache.get(values)
        if child is None:
            child = self._cache[values] = self._metric.labels(*values)
        return child


class PrometheusTelemetry:
    """Implements ``Telemetry``: counters and histograms in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        route = ("dialect", "plan", "route")
        served = ("plan", "provider", "model")
        self._requests = _Children(
            Counter(
                "apipod_requests",
                "Chat requests by client dialect, plan, route, upstream and outcome.",
                (*route, "provider", "model", "outcome"),
                registry=registry,
            )
        )
        self._responses = _Children(
            Counter(
                "apipod_http_responses",
                "HTTP responses by client dialect and status.",
                ("dialect", "status"),
                registry=registry,
            )
        )
        self._duration = _Children(
            Histogram(
                "apipod_request_duration_seconds",
                "Chat request duration, arrival to end.",
                route,
                buckets=DURATION_BUCKETS,
                registry=registry,
            )
        )
        self._ttft = _Children(
            Histogram(
                "apipod_time_to_first_token_seconds",
                "Arrival to the upstream's first event.",
                (*route, "provider", "model"),
                buckets=TTFT_BUCKETS,
                registry=registry,
            )
        )
        self._tokens = _Children(
            Counter(
                "apipod_tokens",
                "Tokens by kind (input, output, cached, reasoning).",
                (*served, "kind"),
                registry=registry,
            )
        )
        self._attempts = _Children(
            Counter(
                "apipod_upstream_attempts",
                "Upstream attempts (and candidates set aside) by outcome.",
                ("provider", "model", "outcome"),
                registry=registry,
            )
        )
        self._failovers = _Children(
            Counter(
                "apipod_upstream_failovers",
                "Attempts failed before the first byte, by error class.",
                ("provider", "model", "reason"),
                registry=registry,
            )
        )
        self._refusals = _Children(
            Counter(
                "apipod_quota_refusals",
                "Requests refused by a budget or a key's limits.",
                ("plan", "reason"),
                registry=registry,
            )
        )
        self._queue_wait = _Children(
            Histogram(
                "apipod_queue_wait_seconds",
                "Time spent waiting for capacity in the wait queue.",
                ("served",),
                buckets=WAIT_BUCKETS,
                registry=registry,
            )
        )

    def request_finished(self, finished: FinishedRequest, dialect: str) -> None:
        plan, route, provider, model = finished.plan, finished.route, finished.provider, finished.model
        self._requests(dialect, plan, route, provider, model, finished.status.value).inc()
        self._duration(dialect, plan, route).observe(finished.duration)
        if finished.ttft is not None:
            self._ttft(dialect, plan, route, provider, model).observe(finished.ttft)
        usage = finished.usage
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cached", usage.cached_input_tokens),
            ("reasoning", usage.reasoning_tokens),
        ):
            if count:
                self._tokens(plan, provider, model, kind).inc(count)
        for attempt in finished.attempts:
            upstream = attempt.account.partition("/")[0]
            self._attempts(upstream, attempt.model, attempt.outcome.value).inc()

    def response_sent(self, dialect: str, status: int) -> None:
        self._responses(dialect, str(status)).inc()

    def failover(self, provider: str, model: str, reason: str) -> None:
        self._failovers(provider, model, reason).inc()

    def queue_wait(self, seconds: float, *, served: bool) -> None:
        self._queue_wait("true" if served else "false").observe(seconds)

    def refused(self, plan: str, reason: str) -> None:
        self._refusals(plan, reason).inc()


class StateCollector(Collector):
    """Gauges read when scraped, from the objects that already know them (nothing on the hot path).

    ``sources`` are zero-argument callables; an object that lacks a notion (an in-memory usage log has no
    backlog) contributes nothing."""

    def __init__(
        self,
        *,
        in_flight: Callable[[], int],
        queue_depth: Callable[[], int],
        resting: Callable[[], tuple[int, int]],
        usage_log: object,
        limits: object,
    ) -> None:
        self._in_flight = in_flight
        self._queue_depth = queue_depth
        self._resting = resting
        self._usage_log = usage_log
        self._limits = limits

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("apipod_requests_in_flight", "Chat requests being served.", self._in_flight())
        yield GaugeMetricFamily("apipod_queue_depth", "Requests waiting for capacity.", self._queue_depth())
        cooling, unhealthy = self._resting()
        yield GaugeMetricFamily("apipod_accounts_cooling_down", "Upstream accounts resting after failures.", cooling)
        yield GaugeMetricFamily("apipod_accounts_unhealthy", "Upstream accounts marked unhealthy.", unhealthy)
        yield from self._usage_writer()
        outages = getattr(self._limits, "outages", None)
        if isinstance(outages, int):
            yield CounterMetricFamily(
                "apipod_redis_outages", "Times Redis became unreachable (limits fell back).", outages
            )

    def _usage_writer(self) -> Iterator[Metric]:
        log = self._usage_log
        depth = getattr(log, "depth", None)
        if isinstance(depth, int):
            yield GaugeMetricFamily("apipod_usage_writer_queue_depth", "Usage rows accepted, not yet written.", depth)
        failures = CounterMetricFamily(
            "apipod_usage_write_failures", "Usage rows the database refused or the queue dropped.", labels=("kind",)
        )
        found = False
        for kind in ("rejected", "dropped"):
            value = getattr(log, kind, None)
            if isinstance(value, int):
                failures.add_metric((kind,), value)
                found = True
        if found:
            yield failures


class PrometheusPage:
    """Implements ``MetricsPage``: this process's registry, or every worker's files in multiprocess mode."""

    def __init__(self, telemetry: PrometheusTelemetry, state: StateCollector, multiproc_dir: str | None) -> None:
        if multiproc_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
        else:
            registry = telemetry.registry
        registry.register(state)
        self._registry = registry

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self._registry), CONTENT_TYPE_PLAIN_0_0_4
