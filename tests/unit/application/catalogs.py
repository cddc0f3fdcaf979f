"""Catalogs for use-case tests: two upstreams with two accounts each, and plans over them."""

from __future__ import annotations

from apipod.domain.catalog import Account, Catalog, ModelLimits, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.quota import Budget, Window, WindowUnit


def two_upstreams(
    *,
    limits_a: ModelLimits | None = None,
    budgets: tuple[Budget, ...] = (),
    plan_rpm: int | None = None,
    plan_concurrency: int | None = None,
) -> Catalog:
    return Catalog(
        upstreams=(
            Upstream(name="up1", kind=UpstreamKind.OPENAI, accounts=(Account(0, "k0"), Account(1, "k1"))),
            Upstream(name="up2", kind=UpstreamKind.ANTHROPIC, accounts=(Account(0, "k2"),)),
        ),
        models=(
            UpstreamModel(name="a", upstream="up1", upstream_model="model-a", limits=limits_a or ModelLimits()),
            UpstreamModel(name="b", upstream="up2", upstream_model="model-b"),
        ),
        plans=(
            Plan(
                name="pro",
                routes=(Route("a", 1000), Route("b", 1)),
                budgets=budgets,
                rpm=plan_rpm,
                max_concurrency=plan_concurrency,
            ),
        ),
    )


def daily_requests(n: int) -> tuple[Budget, ...]:
    return (Budget(window=Window(WindowUnit.DAY), requests=n),)


def daily_tokens(n: int) -> tuple[Budget, ...]:
    return (Budget(window=Window(WindowUnit.DAY), tokens=n),)
