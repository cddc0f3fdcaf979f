"""AdministerKeys: pages of filtered keys, changes checked before storing, rotation with a grace period."""

from __future__ import annotations

from datetime import timedelta

import pytest

from apipod.application.manage_keys import UNSET, KeyChange, KeyFilter
from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.errors import InvalidRequestError, NotFoundError
from apipod.domain.keys import KeyStatus, digest_of
from tests.unit.application.fakes import World, make_world

CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.OPENAI),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="x"),),
    plans=(Plan(name="basic", routes=(Route("m"),)), Plan(name="pro", routes=(Route("m"),))),
)


@pytest.fixture
async def world() -> World:
    return await make_world(CATALOG)


async def test_pages_follow_each_other_and_filter(world: World) -> None:
    for name in ("ann", "bob", "bea", "cat"):
        await world.gateway.issue_key(name=name, plan="pro" if name.startswith("b") else "basic")

    first = await world.gateway.page_keys(KeyFilter(), limit=3)
    rest = await world.gateway.page_keys(KeyFilter(), limit=3, after=first.next_after)
    bs = await world.gateway.page_keys(KeyFilter(plan="pro", name_contains="E"), limit=10)

    assert [k.name for k in first.keys + rest.keys] == ["ann", "bob", "bea", "cat"]
    assert rest.next_after is None
    assert [k.name for k in bs.keys] == ["bea"]
    with pytest.raises(InvalidRequestError):
        await world.gateway.page_keys(KeyFilter(), limit=3, after="key_gone")


async def test_status_filters_see_revoked_and_expired_keys(world: World) -> None:
    revoked = await world.gateway.issue_key(name="r", plan="basic")
    await world.gateway.issue_key(name="e", plan="basic", expires_at=world.clock.now() + timedelta(hours=1))
    await world.gateway.revoke_key(revoked.key.id)
    world.clock.advance(7200)

    async def names(status: KeyStatus) -> list[str]:
        return [k.name for k in (await world.gateway.page_keys(KeyFilter(status=status), limit=10)).keys]

    assert (await names(KeyStatus.REVOKED), await names(KeyStatus.EXPIRED), await names(KeyStatus.ACTIVE)) == (
        ["r"],
        ["e"],
        [],
    )


async def test_a_change_to_an_unknown_plan_or_a_past_expiry_stores_nothing(world: World) -> None:
    issued = await world.gateway.issue_key(name="a", plan="basic")

    with pytest.raises(InvalidRequestError):
        await world.gateway.change_key(issued.key.id, KeyChange(plan="ghost"))
    with pytest.raises(InvalidRequestError):
        await world.gateway.change_key(issued.key.id, KeyChange(expires_at=world.clock.now()))
    with pytest.raises(NotFoundError):
        await world.gateway.change_key("key_none", KeyChange(name="x"))
    assert await world.keys.get(issued.key.id) == issued.key
    unchanged = await world.gateway.change_key(issued.key.id, KeyChange(name=UNSET))
    assert unchanged == issued.key


async def test_rotation_keeps_the_id_and_grace_only_the_latest_secret(world: World) -> None:
    issued = await world.gateway.issue_key(name="a", plan="basic")

    second = await world.gateway.rotate_key(issued.key.id, grace_seconds=30)
    third = await world.gateway.rotate_key(issued.key.id, grace_seconds=30)

    assert second.key.id == third.key.id == issued.key.id
    assert third.key.previous_digest == digest_of(second.plaintext)
    assert await world.keys.by_digest(digest_of(issued.plaintext)) is None
    with pytest.raises(InvalidRequestError):
        await world.gateway.rotate_key(issued.key.id, grace_seconds=-1)
