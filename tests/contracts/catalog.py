"""Behaviour every CatalogStore must show. Subclass and provide an (async) ``store`` fixture that yields an
empty store. Tests look things up by name: the order of a snapshot is not part of the contract."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest

from apipod.application.ports import CatalogStore
from apipod.domain.catalog import (
    Account,
    Alias,
    Catalog,
    ModelLimits,
    ModelPrices,
    Plan,
    Route,
    Timeouts,
    Upstream,
    UpstreamKind,
    UpstreamModel,
)
from apipod.domain.errors import ConflictError, NotFoundError
from apipod.domain.quota import Budget
from tests.contracts.builders import DAY, FIVE_HOURS, MONTH, make_model, make_plan, make_upstream


def upstream_named(catalog: Catalog, name: str) -> Upstream:
    matches = [u for u in catalog.upstreams if u.name == name]
    assert len(matches) == 1, f"expected one upstream {name!r}, found {len(matches)}"
    return matches[0]


def model_named(catalog: Catalog, name: str) -> UpstreamModel:
    matches = [m for m in catalog.models if m.name == name]
    assert len(matches) == 1, f"expected one model {name!r}, found {len(matches)}"
    return matches[0]


def plan_named(catalog: Catalog, name: str) -> Plan:
    matches = [p for p in catalog.plans if p.name == name]
    assert len(matches) == 1, f"expected one plan {name!r}, found {len(matches)}"
    return matches[0]


class CatalogStoreContract:
    @pytest.fixture
    def store(self) -> CatalogStore:
        raise NotImplementedError("subclasses provide an empty CatalogStore")

    async def test_an_empty_store_has_an_empty_snapshot(self, store: CatalogStore) -> None:
        assert await store.snapshot() == Catalog()

    async def test_upsert_upstream_keeps_every_field(self, store: CatalogStore) -> None:
        upstream = Upstream(
            name="claude",
            kind=UpstreamKind.ANTHROPIC,
            base_url="https://api.anthropic.com",
            accounts=(Account(0, "sk-ant-1"), Account(1, "sk-ant-2", project="proj-7")),
            headers={"anthropic-beta": "x", "X-Team": "blue"},
            timeouts=Timeouts(connect=3.5, read=120.0, first_event=7.5, total=900.0),
            options={"delay_ms": 25, "token_url": "https://t.example", "nested": {"a": [1, 2]}, "flag": True},
            max_event_bytes=1000,
            max_response_bytes=2000,
        )

        await store.upsert_upstream(upstream)

        assert upstream_named(await store.snapshot(), "claude") == upstream

    async def test_upsert_upstream_replaces_by_name(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai", secrets=("sk-1", "sk-2"), headers={"a": "1"}))

        await store.upsert_upstream(
            make_upstream("openai", base_url="https://proxy.example/v1", secrets=("sk-3",), options={"x": 1})
        )

        snapshot = await store.snapshot()
        assert len(snapshot.upstreams) == 1
        replaced = upstream_named(snapshot, "openai")
        assert replaced.base_url == "https://proxy.example/v1"
        assert replaced.accounts == (Account(0, "sk-3"),)
        assert dict(replaced.headers) == {}
        assert dict(replaced.options) == {"x": 1}

    async def test_upsert_model_keeps_every_field(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        model = make_model(
            "mini",
            upstream_model="gpt-4o-mini",
            limits=ModelLimits(rpm=500, tpm=200_000, rpd=10_000, max_concurrency=10),
        )

        await store.upsert_model(model)

        assert model_named(await store.snapshot(), "mini") == model

    async def test_upsert_model_replaces_by_name(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_upstream(make_upstream("other", base_url="https://other.example/v1"))
        await store.upsert_model(make_model("mini", limits=ModelLimits(rpm=5)))

        await store.upsert_model(make_model("mini", upstream="other", upstream_model="gpt-4.1-mini"))

        snapshot = await store.snapshot()
        assert len(snapshot.models) == 1
        assert model_named(snapshot, "mini") == make_model("mini", upstream="other", upstream_model="gpt-4.1-mini")

    async def test_upsert_model_with_an_unknown_upstream_is_not_found(self, store: CatalogStore) -> None:
        with pytest.raises(NotFoundError):
            await store.upsert_model(make_model("mini", upstream="ghost"))

        assert (await store.snapshot()).models == ()

    async def test_upsert_plan_keeps_every_field(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_model(make_model("mini"))
        await store.upsert_model(make_model("big", upstream_model="gpt-4o"))
        plan = make_plan(
            "cursor-pro-sonnet",
            routes=(Route("mini", 70.0), Route("big", 30.0)),
            aliases=(
                Alias("gpt-4o-mini", (Route("mini", 1.0),)),
                Alias("both", (Route("mini", 0.5), Route("big", 2.5))),
            ),
            budgets=(
                Budget(window=DAY, tokens=2_000_000),
                Budget(window=MONTH, requests=50_000),
                Budget(window=FIVE_HOURS, tokens=100, requests=10),
            ),
            strict_models=True,
            rpm=60,
            max_concurrency=4,
        )

        await store.upsert_plan(plan)

        assert plan_named(await store.snapshot(), "cursor-pro-sonnet") == plan

    async def test_upsert_plan_replaces_by_name(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_model(make_model("mini"))
        await store.upsert_model(make_model("big", upstream_model="gpt-4o"))
        await store.upsert_plan(make_plan("pro", budgets=(Budget(window=DAY, tokens=10),), rpm=5))

        replacement = make_plan("pro", routes=(Route("big", 1.0),))
        await store.upsert_plan(replacement)

        snapshot = await store.snapshot()
        assert len(snapshot.plans) == 1
        assert plan_named(snapshot, "pro") == replacement

    async def test_upsert_plan_routing_to_an_unknown_model_is_not_found(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_model(make_model("mini"))

        with pytest.raises(NotFoundError):
            await store.upsert_plan(make_plan("pro", routes=(Route("mini", 1.0), Route("ghost", 1.0))))

        assert (await store.snapshot()).plans == ()

    async def test_upsert_plan_with_an_alias_to_an_unknown_model_is_not_found(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_model(make_model("mini"))

        with pytest.raises(NotFoundError):
            await store.upsert_plan(make_plan("pro", aliases=(Alias("fast", (Route("ghost", 1.0),)),)))

        assert (await store.snapshot()).plans == ()

    async def test_snapshot_holds_every_kind(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_upstream(make_upstream("local", kind=UpstreamKind.MOCK, base_url="", secrets=()))
        await store.upsert_model(make_model("mini"))
        await store.upsert_model(make_model("echo", upstream="local", upstream_model="echo"))
        await store.upsert_plan(make_plan("pro"))
        await store.upsert_plan(make_plan("demo", routes=(Route("echo", 1.0),)))

        snapshot = await store.snapshot()

        assert sorted(u.name for u in snapshot.upstreams) == ["local", "openai"]
        assert sorted(m.name for m in snapshot.models) == ["echo", "mini"]
        assert sorted(p.name for p in snapshot.plans) == ["demo", "pro"]
        assert upstream_named(snapshot, "local").accounts == ()

    async def test_add_account_appends_to_the_pool(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("copilot", kind=UpstreamKind.COPILOT, secrets=("gho_1", "gho_2")))

        account = await store.add_account("copilot", "gho_3")

        assert account == Account(2, "gho_3")
        accounts = upstream_named(await store.snapshot(), "copilot").accounts
        assert accounts == (Account(0, "gho_1"), Account(1, "gho_2"), Account(2, "gho_3"))

    async def test_add_account_to_an_empty_pool_starts_at_zero(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("copilot", kind=UpstreamKind.COPILOT, secrets=()))

        first = await store.add_account("copilot", "gho_1")
        second = await store.add_account("copilot", "gho_2")

        assert (first.index, second.index) == (0, 1)
        assert [a.secret for a in upstream_named(await store.snapshot(), "copilot").accounts] == ["gho_1", "gho_2"]

    async def test_add_account_to_an_unknown_upstream_is_not_found(self, store: CatalogStore) -> None:
        with pytest.raises(NotFoundError):
            await store.add_account("ghost", "gho_1")

    async def test_a_snapshot_is_not_changed_by_later_writes(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        before = await store.snapshot()

        await store.upsert_upstream(make_upstream("second"))

        assert [u.name for u in before.upstreams] == ["openai"]
        assert len((await store.snapshot()).upstreams) == 2

    # -- prices, currency, deletes ---------------------------------------------------------------------

    async def test_prices_are_kept_exactly(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        prices = ModelPrices(
            input=Decimal("0.15"), output=Decimal("0.6"), cache_read=Decimal("0.075"), cache_write=None
        )
        model = attrs.evolve(make_model("mini"), prices=prices)

        await store.upsert_model(model)

        assert model_named(await store.snapshot(), "mini") == model
        repriced = attrs.evolve(model, prices=ModelPrices(input=Decimal("0.0000000001"), output=Decimal("123456.789")))
        await store.upsert_model(repriced)
        assert model_named(await store.snapshot(), "mini").prices == repriced.prices

    async def test_a_money_budget_is_kept_exactly(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_model(make_model("mini"))
        plan = make_plan("pro", budgets=(Budget(window=DAY, cost=Decimal("25.10")), Budget(window=MONTH, tokens=5)))

        await store.upsert_plan(plan)

        assert plan_named(await store.snapshot(), "pro") == plan

    async def test_the_currency_is_usd_until_set(self, store: CatalogStore) -> None:
        assert (await store.snapshot()).currency == "USD"

        await store.set_currency("EUR")
        try:
            assert (await store.snapshot()).currency == "EUR"
        finally:
            await store.set_currency("USD")  # a shared database outlives the test (its tables are emptied)

    async def test_delete_plan(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_model(make_model("mini"))
        await store.upsert_plan(make_plan("pro"))
        await store.upsert_plan(make_plan("free"))

        await store.delete_plan("pro")

        assert [p.name for p in (await store.snapshot()).plans] == ["free"]
        with pytest.raises(NotFoundError):
            await store.delete_plan("pro")

    async def test_a_model_a_plan_routes_to_cannot_be_deleted(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai"))
        await store.upsert_model(make_model("mini"))
        await store.upsert_model(make_model("big"))
        await store.upsert_plan(make_plan("pro", aliases=(Alias("fast", (Route("big", 1.0),)),)))

        with pytest.raises(ConflictError):
            await store.delete_model("mini")
        with pytest.raises(ConflictError):
            await store.delete_model("big")  # named by an alias only
        await store.delete_plan("pro")
        await store.delete_model("big")

        assert [m.name for m in (await store.snapshot()).models] == ["mini"]
        with pytest.raises(NotFoundError):
            await store.delete_model("big")

    async def test_an_upstream_a_model_names_cannot_be_deleted(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai", secrets=("sk-1", "sk-2")))
        await store.upsert_model(make_model("mini"))

        with pytest.raises(ConflictError):
            await store.delete_upstream("openai")
        await store.delete_model("mini")
        await store.delete_upstream("openai")

        assert await store.snapshot() == Catalog()
        with pytest.raises(NotFoundError):
            await store.delete_upstream("openai")

    async def test_a_deleted_upstream_can_be_created_again_with_a_new_pool(self, store: CatalogStore) -> None:
        await store.upsert_upstream(make_upstream("openai", secrets=("sk-1", "sk-2")))
        await store.delete_upstream("openai")

        await store.upsert_upstream(make_upstream("openai", secrets=("sk-3",)))

        assert [a.secret for a in upstream_named(await store.snapshot(), "openai").accounts] == ["sk-3"]
