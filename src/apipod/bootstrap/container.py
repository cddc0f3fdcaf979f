"""The dishka container: the one place that names concrete adapters, and the one place that builds the
object graph (adapters, use cases and the ``Gateway`` facade alike).

Lifetimes: everything here is APP-scoped (one per process: stores, pools, the engine's state such as account
rotation and the wait queue). Per-request objects (request id, principal, what to close when the response
ends) live in the REQUEST scope that the HTTP entrypoint provides and opens per request.

The HTTP service, the library entry (``open_gateway``) and the tests all build this same graph; tests and
embedders replace parts of it with ``replacing({Port: instance})``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import timedelta
from typing import Any

import httpx
from dishka import STRICT_VALIDATION, AsyncContainer, Provider, Scope, make_async_container, provide, provide_all

from apipod.adapters.metrics.prometheus import PrometheusTelemetry
from apipod.application.admit_request import AdmitRequest
from apipod.application.authenticate_key import AuthenticateKey
from apipod.application.chat_pipeline import ChatPipeline
from apipod.application.complete_chat import CompleteChat
from apipod.application.dispatch import Dispatcher
from apipod.application.gateway import Gateway
from apipod.application.issue_api_key import IssueApiKey, ManageKeys
from apipod.application.key_standing import KeyStanding
from apipod.application.live_state import LiveState
from apipod.application.manage_keys import AdministerKeys
from apipod.application.ports import (
    CatalogStore,
    Clock,
    IdGenerator,
    KeyRepository,
    LimitStore,
    MetricsPage,
    QuotaLedger,
    Randomness,
    ResponseStore,
    Telemetry,
    UpstreamRegistry,
    UsageLog,
)
from apipod.application.ports.health import StoreProbe
from apipod.application.record_usage import RecordUsage
from apipod.application.reserve_quota import ReserveQuota
from apipod.application.response_history import ResponseHistory, ResponseRetention
from apipod.application.route_model import RouteModel
from apipod.application.settings import GovernanceSettings
from apipod.application.signature_memory import SignatureMemory
from apipod.application.stream_chat import StreamChat
from apipod.application.wait_queue import WaitQueue
from apipod.bootstrap.settings import Settings
from apipod.bootstrap.stores import Stores, open_stores
from apipod.bootstrap.upstreams import build_registry


class SystemProvider(Provider):
    scope = Scope.APP

    @provide
    def clock(self) -> Clock:
        from apipod.adapters.system import SystemClock

        return SystemClock()

    @provide
    def randomness(self) -> Randomness:
        from apipod.adapters.system import SystemRandomness

        return SystemRandomness()

    @provide
    def ids(self, clock: Clock) -> IdGenerator:
        from apipod.adapters.system import RandomIdGenerator

        return RandomIdGenerator(clock)

    @provide
    def governance(self, settings: Settings) -> GovernanceSettings:
        return settings.governance


class StorageProvider(Provider):
    scope = Scope.APP

    @provide
    async def stores(self, settings: Settings, clock: Clock) -> AsyncIterator[Stores]:
        stores = await open_stores(
            settings.database_url,
            migrate=settings.migrate_on_start,
            secret_key=settings.secret_key,
            quota_lease_seconds=settings.quota_lease_seconds,
            clock=clock,
        )
        try:
            yield stores
        finally:
            await stores.close()

    @provide
    def keys(self, stores: Stores) -> KeyRepository:
        return stores.keys

    @provide
    def catalog(self, stores: Stores) -> CatalogStore:
        return stores.catalog

    @provide
    def ledger(self, stores: Stores) -> QuotaLedger:
        return stores.ledger

    @provide
    def usage_log(self, stores: Stores) -> UsageLog:
        return stores.usage_log

    @provide
    def responses(self, stores: Stores) -> ResponseStore:
        return stores.responses

    @provide
    def response_retention(self, settings: Settings) -> ResponseRetention:
        return ResponseRetention(timedelta(days=settings.responses_ttl_days))

    @provide
    def store_probe(self, stores: Stores) -> StoreProbe:
        """Readiness (``/health/ready``): the store's cheap round trip."""
        return stores.probe

    @provide
    async def limits(self, settings: Settings, clock: Clock) -> AsyncIterator[LimitStore]:
        if settings.redis_url:
            from apipod.adapters.memory.limits import InMemoryLimitStore
            from apipod.adapters.redis import RedisLimitStore
            from apipod.adapters.redis.fallback import FallbackLimitStore

            store = RedisLimitStore.from_url(settings.redis_url)
            try:
                yield FallbackLimitStore(store, InMemoryLimitStore(clock), clock)
            finally:
                await store.close()
            return
        from apipod.adapters.memory.limits import InMemoryLimitStore

        yield InMemoryLimitStore(clock)


class UpstreamProvider(Provider):
    scope = Scope.APP

    @provide
    async def http_client(self, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        from apipod.adapters.upstreams._http import make_http_client

        client = make_http_client(transport=settings.http_transport, max_connections=settings.http_max_connections)
        try:
            yield client
        finally:
            await client.aclose()

    @provide
    def registry(
        self, client: httpx.AsyncClient, ids: IdGenerator, clock: Clock, catalog: CatalogStore
    ) -> UpstreamRegistry:
        return build_registry(client, ids=ids, clock=clock, catalog=catalog)


class EngineProvider(Provider):
    """The use cases and the facade, autowired from their constructors."""

    scope = Scope.APP

    engine = provide_all(
        WaitQueue,
        AuthenticateKey,
        RouteModel,
        AdmitRequest,
        ReserveQuota,
        Dispatcher,
        RecordUsage,
        ChatPipeline,
        CompleteChat,
        StreamChat,
        IssueApiKey,
        ManageKeys,
        KeyStanding,
        AdministerKeys,
        LiveState,
        ResponseHistory,
        Gateway,
    )

    @provide
    def signatures(self, clock: Clock) -> SignatureMemory:
        return SignatureMemory(clock)


class TelemetryProvider(Provider):
    """Metrics: the Telemetry port over prometheus_client, and the ``/metrics`` page with its scrape-time
    gauges. A registry per container, so several containers in one process (tests) never collide."""

    scope = Scope.APP

    @provide
    def prometheus(self) -> Iterator[PrometheusTelemetry]:
        from prometheus_client import CollectorRegistry

        telemetry = PrometheusTelemetry(CollectorRegistry(auto_describe=True))
        yield telemetry
        telemetry.flush()  # the last reports, into the metrics (in multiprocess mode: into the shared files)

    @provide
    def telemetry(self, prometheus: PrometheusTelemetry) -> Telemetry:
        return prometheus

    @provide
    def metrics_page(
        self,
        settings: Settings,
        prometheus: PrometheusTelemetry,
        pipeline: ChatPipeline,
        queue: WaitQueue,
        dispatcher: Dispatcher,
        usage_log: UsageLog,
        limits: LimitStore,
    ) -> MetricsPage:
        from apipod.adapters.metrics.prometheus import PrometheusPage, StateCollector

        state = StateCollector(
            in_flight=lambda: pipeline.in_flight,
            queue_depth=lambda: queue.waiting,
            resting=dispatcher.resting,
            usage_log=usage_log,
            limits=limits,
        )
        return PrometheusPage(prometheus, state, settings.prometheus_multiproc_dir)


def replacing(instances: Mapping[Any, object]) -> tuple[Provider, dict[Any, Any]]:
    """A provider that puts ``instances`` (``{Port: object}``) in place of the graph's own, and the context
    to pass with it: ``build_container(settings, provider, context=context)``."""
    provider = Provider(scope=Scope.APP)
    for port in instances:
        provider.from_context(provides=port, scope=Scope.APP, override=True)
    return provider, dict(instances)


def build_container(
    settings: Settings, *providers: Provider, context: Mapping[Any, Any] | None = None
) -> AsyncContainer:
    """The production graph, plus ``providers`` (the HTTP request scope, or overrides from ``replacing``)."""
    return make_async_container(
        SystemProvider(),
        StorageProvider(),
        UpstreamProvider(),
        EngineProvider(),
        TelemetryProvider(),
        *providers,
        context={Settings: settings, **(context or {})},
        validation_settings=STRICT_VALIDATION,
        # PERF: no lock around APP-scoped lookups (every request makes a few). Safe because whoever builds the
        # container resolves the Gateway, and with it every APP object of the engine, before serving.
        lock_factory=None,
    )
