"""The Telemetry port over ``prometheus_client``, and the ``/metrics`` page.

Labels come from bounded sets only: the client's dialect, names from the catalog (plan, route alias,
provider, upstream model), outcomes and statuses; never a key, a secret or a client's free text.

Counters and histograms live in prometheus_client's metrics; the gauges (in flight, queue depth, resting
accounts, usage-writer backlog) are read at scrape time by ``StateCollector``. With
``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps counters and histograms in files shared by the
workers and ``MultiProcessCollector`` sums them; the gauges then describe the worker that answered.

What every request reports (its end, its response) is first added up in plain dictionaries, per label set,
and moved into the metrics in one go (``flush``): when the page is rendered, at most ``FLUSH_SECONDS`` after
the first report since the last move, and when the container closes. PERF (issue 10): prometheus_client takes
a lock and checks its arguments on every increment, and a request made ten of them (about 550 Python opcodes,
3 % of a request's work); adding to a tally costs a tenth of that. A scrape of this process's page is exact;
in multiprocess mode another worker's last ``FLUSH_SECONDS`` reach the files on that worker's next flush.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from apipod.application.ports import FinishedRequest
from apipod.domain.usage import UsageStatus

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
FLUSH_SECONDS = 1.0
"""The longest a request's report waits in the tallies before it reaches the metrics (see the module's docstring)."""

_INF = float("inf")
_DURATION_BOUNDS = (*DURATION_BUCKETS, _INF)  # a histogram's buckets as prometheus_client keeps them
_TTFT_BOUNDS = (*TTFT_BUCKETS, _INF)


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


class _Served:
    """What the requests of one label set (dialect, plan, route, provider, model, outcome) added up to since the
    last flush: their number, their durations and times to first token as histogram bucket counts and sums
    (bucket ``i`` counts the values ``v`` with ``bounds[i-1] < v <= bounds[i]``: ``bisect_left``, as
    prometheus_client's ``observe`` picks it), and their tokens."""

    __slots__ = (
        "cached",
        "count",
        "duration_sum",
        "durations",
        "input",
        "output",
        "reasoning",
        "ttft_sum",
        "ttfts",
    )

    def __init__(self) -> None:
        self.count = 0
        self.durations = [0] * len(_DURATION_BOUNDS)
        self.duration_sum = 0.0
        self.ttfts = [0] * len(_TTFT_BOUNDS)
        self.ttft_sum = 0.0
        self.input = self.output = self.cached = self.reasoning = 0


def _add_observations(histogram: Any, counts: list[int], total: float) -> None:
    """``counts`` (per bucket) and their sum added to a histogram child, as that many ``observe`` calls would.

    prometheus_client has no public call for it: its ``observe`` increments ``_sum`` and one of ``_buckets``
    (one value per bucket, not cumulative); ``test_prometheus_metrics.py`` holds the page to ``observe``'s."""
    histogram._sum.inc(total)
    buckets = histogram._buckets
    for index, count in enumerate(counts):
        if count:
            buckets[index].inc(count)


class PrometheusTelemetry:
    """Implements ``Telemetry``: counters and histograms in ``registry``, the per-request reports added up in
    tallies first (see the module's docstring). Used from one event loop's thread, like the pipeline."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._served: dict[tuple[str, str, str, str, str, UsageStatus], _Served] = {}
        self._tried: dict[tuple[str, str, Any], int] = {}  # (account, model, outcome) -> attempts
        self._sent: dict[tuple[str, int], int] = {}  # (dialect, status) -> responses
        self._flush_soon: asyncio.TimerHandle | None = None
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
        key = (dialect, finished.plan, finished.route, finished.provider, finished.model, finished.status)
        served = self._served.get(key)
        if served is None:
            served = self._served[key] = _Served()
        served.count += 1
        duration = finished.duration
        served.duration_sum += duration
        served.durations[bisect_left(_DURATION_BOUNDS, duration)] += 1
        ttft = finished.ttft
        if ttft is not None:
            served.ttft_sum += ttft
            served.ttfts[bisect_left(_TTFT_BOUNDS, ttft)] += 1
        usage = finished.usage
        served.input += usage.input_tokens
        served.output += usage.output_tokens
        served.cached += usage.cached_input_tokens
        served.reasoning += usage.reasoning_tokens
        tried = self._tried
        for attempt in finished.attempts:
            step = (attempt.account, attempt.model, attempt.outcome)
            tried[step] = tried.get(step, 0) + 1
        if self._flush_soon is None:
            self._schedule()

    def response_sent(self, dialect: str, status: int) -> None:
        key = (dialect, status)
        sent = self._sent
        sent[key] = sent.get(key, 0) + 1
        if self._flush_soon is None:
            self._schedule()

    def flush(self) -> None:
        """Moves the tallies into the metrics (what a scrape, the timer and shutdown call)."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        served, self._served = self._served, {}
        tried, self._tried = self._tried, {}
        sent, self._sent = self._sent, {}
        for (dialect, plan, route, provider, model, status), tally in served.items():
            self._requests(dialect, plan, route, provider, model, status.value).inc(tally.count)
            _add_observations(self._duration(dialect, plan, route), tally.durations, tally.duration_sum)
            if any(tally.ttfts):
                _add_observations(self._ttft(dialect, plan, route, provider, model), tally.ttfts, tally.ttft_sum)
            for kind, count in (
                ("input", tally.input),
                ("output", tally.output),
                ("cached", tally.cached),
                ("reasoning", tally.reasoning),
            ):
                if count:
                    self._tokens(plan, provider, model, kind).inc(count)
        for (account, model, outcome), count in tried.items():
            self._attempts(account.partition("/")[0], model, outcome.value).inc(count)
        for (dialect, code), count in sent.items():
            self._responses(dialect, str(code)).inc(count)

    def _schedule(self) -> None:
        """The next flush, ``FLUSH_SECONDS`` from now; at once when no event loop runs (a synchronous caller)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_soon = loop.call_later(FLUSH_SECONDS, self.flush)

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
        self._telemetry = telemetry

    def render(self) -> tuple[bytes, str]:
        self._telemetry.flush()
        return generate_latest(self._registry), CONTENT_TYPE_PLAIN_0_0_4
