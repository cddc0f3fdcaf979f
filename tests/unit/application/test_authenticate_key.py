from __future__ import annotations

from datetime import timedelta

import pytest

from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.errors import AuthenticationError, InvalidRequestError, PermissionDeniedError
from tests.unit.application.fakes import make_world

CATALOG = Catalog(
    upstreams=(Upstream(name="u", kind=UpstreamKind.MOCK),),
    models=(UpstreamModel(name="m", upstream="u", upstream_model="m"),),
    plans=(Plan(name="basic", routes=(Route("m"),)),),
)


async def test_issued_key_authenticates_to_its_plan() -> None:
    world = await make_world(CATALOG)
    issued = await world.gateway.issue_key(name="alice", plan="basic")
    assert issued.plaintext.startswith("apk_") and len(issued.plaintext) == 47
    principal = await world.gateway.authenticate(issued.plaintext)
    assert principal.key.name == "alice"
    assert principal.plan.name == "basic"
    stored = await world.keys.get(issued.key.id)
    assert stored is not None and issued.plaintext not in repr(stored) and stored.digest != issued.plaintext


@pytest.mark.parametrize("credential", [None, "", "apk_unknown", "sk-something"])
async def test_missing_or_unknown_credentials_are_401(credential: str | None) -> None:
    world = await make_world(CATALOG)
    with pytest.raises(AuthenticationError):
        await world.gateway.authenticate(credential)


async def test_revoked_key_is_403_at_once_on_this_process() -> None:
    world = await make_world(CATALOG)
    issued = await world.gateway.issue_key(name="bob", plan="basic")
    await world.gateway.authenticate(issued.plaintext)
    await world.gateway.revoke_key(issued.key.id)
    with pytest.raises(PermissionDeniedError, match="revoked"):
        await world.gateway.authenticate(issued.plaintext)


async def test_revocation_by_another_process_is_seen_within_the_cache_ttl() -> None:
    world = await make_world(CATALOG, key_cache_ttl=1.0)
    issued = await world.gateway.issue_key(name="bob", plan="basic")
    await world.gateway.authenticate(issued.plaintext)
    await world.keys.set_active(issued.key.id, active=False)  # as another process would, behind our cache
    await world.gateway.authenticate(issued.plaintext)  # still cached
    world.clock.advance(1.01)
    with pytest.raises(PermissionDeniedError):
        await world.gateway.authenticate(issued.plaintext)


async def test_expired_key_is_403() -> None:
    world = await make_world(CATALOG)
    issued = await world.gateway.issue_key(
        name="carol", plan="basic", expires_at=world.clock.now() + timedelta(hours=12)
    )
    await world.gateway.authenticate(issued.plaintext)
    world.clock.advance(12 * 3600)
    with pytest.raises(PermissionDeniedError, match="expired"):
        await world.gateway.authenticate(issued.plaintext)


async def test_issuing_for_an_unknown_plan_or_without_a_name_is_invalid() -> None:
    world = await make_world(CATALOG)
    with pytest.raises(InvalidRequestError, match="Unknown plan"):
        await world.gateway.issue_key(name="dave", plan="gold")
    with pytest.raises(InvalidRequestError):
        await world.gateway.issue_key(name="  ", plan="basic")
