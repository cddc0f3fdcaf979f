"""The dishka container: the one place that names concrete adapters and wires them to the ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from dishka import AsyncContainer, Provider, Scope, make_async_container, provide

from apipod.application.gateway import Gateway
from apipod.application.ports import (
    CatalogStore,
    Clock,
    IdGenerator,
    KeyRepository,
    LimitStore,
    QuotaLedger,
    Randomness,
    UpstreamRegistry,
    UsageLog,
)
from apipod.application.settings import GovernanceSettings
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
    def ids(self) -> IdGenerator:
        from apipod.adapters.system import RandomIdGenerator

        return RandomIdGenerator()

    @provide
    def governance(self, settings: Settings) -> GovernanceSettings:
        return settings.governance


class StorageProvider(Provider):
    scope = Scope.APP

    @provide
    async def stores(self, settings: Settings) -> AsyncIterator[Stores]:
        stores = await open_stores(settings.database_url, migrate=settings.migrate_on_start)
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
    async def limits(self, settings: Settings, clock: Clock) -> AsyncIterator[LimitStore]:
        if settings.redis_url:
            from apipod.adapters.redis import RedisLimitStore

            store = RedisLimitStore.from_url(settings.redis_url)
            try:
                yield store
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


class GatewayProvider(Provider):
    scope = Scope.APP

    @provide
    def gateway(
        self,
        keys: KeyRepository,
        catalog: CatalogStore,
        ledger: QuotaLedger,
        usage_log: UsageLog,
        limits: LimitStore,
        upstreams: UpstreamRegistry,
        clock: Clock,
        randomness: Randomness,
        ids: IdGenerator,
        settings: GovernanceSettings,
    ) -> Gateway:
        return Gateway(
            keys=keys,
            catalog=catalog,
            ledger=ledger,
            usage_log=usage_log,
            limits=limits,
            upstreams=upstreams,
            clock=clock,
            randomness=randomness,
            ids=ids,
            settings=settings,
        )


def build_container(settings: Settings, *overrides: Provider) -> AsyncContainer:
    """The production graph; tests pass override providers (``override=True`` factories)."""
    return make_async_container(
        SystemProvider(),
        StorageProvider(),
        UpstreamProvider(),
        GatewayProvider(),
        *overrides,
        context={Settings: settings},
    )
