from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from apipod.domain.catalog import Catalog, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.errors import AuthenticationError, InvalidRequestError, PermissionDeniedError, StorageError
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


class SlowKeys:
    """A key store whose lookups are counted and wait for ``open``."""

    def __init__(self, keys: Any) -> None:
        self._keys = keys
        self.lookups = 0
        self.open = asyncio.Event()
        self.failure: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._keys, name)

    async def by_digest(self, digest: str) -> Any:
        """The key as it is when asked, answered once ``open`` is set (a query's row, a slow round trip)."""
        self.lookups += 1
        key = await self._keys.by_digest(digest)
        await self.open.wait()
        if self.failure is not None:
            raise self.failure
        return key


async def slow_world() -> tuple[Any, SlowKeys, str]:
    world = await make_world(CATALOG, key_cache_ttl=1.0)
    issued = await world.gateway.issue_key(name="dave", plan="basic")
    slow = SlowKeys(world.keys)
    world.gateway.authenticator._keys = slow  # type: ignore[assignment]  # the store behind the use case
    return world, slow, issued.plaintext


async def test_an_expired_entry_is_looked_up_once_for_every_request_waiting() -> None:
    world, slow, plaintext = await slow_world()
    waiting = [asyncio.create_task(world.gateway.authenticate(plaintext)) for _ in range(50)]
    await asyncio.sleep(0)
    slow.open.set()
    principals = await asyncio.gather(*waiting)
    assert slow.lookups == 1 and {p.key.name for p in principals} == {"dave"}

    await world.gateway.authenticate(plaintext)  # cached
    world.clock.advance(1.01)
    await asyncio.gather(*(world.gateway.authenticate(plaintext) for _ in range(20)))
    assert slow.lookups == 2


async def test_a_request_that_gives_up_does_not_cancel_the_lookup_others_wait_for() -> None:
    world, slow, plaintext = await slow_world()
    first = asyncio.create_task(world.gateway.authenticate(plaintext))
    await asyncio.sleep(0)
    second = asyncio.create_task(world.gateway.authenticate(plaintext))
    await asyncio.sleep(0)
    first.cancel()
    slow.open.set()
    assert (await second).key.name == "dave"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert slow.lookups == 1


async def test_a_failed_lookup_fails_its_waiters_and_the_next_request_asks_again() -> None:
    world, slow, plaintext = await slow_world()
    slow.failure = StorageError("The database is down.")
    slow.open.set()
    results = await asyncio.gather(*(world.gateway.authenticate(plaintext) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, StorageError) for result in results) and slow.lookups == 1
    slow.failure = None
    assert (await world.gateway.authenticate(plaintext)).key.name == "dave"
    assert slow.lookups == 2


async def test_a_revocation_during_a_lookup_is_not_undone_by_it() -> None:
    world, slow, plaintext = await slow_world()
    (key,) = [k for k in await world.keys.list() if k.name == "dave"]
    looking = asyncio.create_task(world.gateway.authenticate(plaintext))
    while not slow.lookups:
        await asyncio.sleep(0)  # the lookup has read the key, still active
    await world.gateway.revoke_key(key.id)  # forgets this process's lookups
    slow.open.set()
    assert (await looking).key.name == "dave"  # read before the revocation
    with pytest.raises(PermissionDeniedError, match="revoked"):
        await world.gateway.authenticate(plaintext)


async def test_an_entry_past_half_its_time_is_refreshed_while_requests_go_on_with_it() -> None:
    world, slow, plaintext = await slow_world()
    slow.open.set()
    await world.gateway.authenticate(plaintext)
    assert slow.lookups == 1
    slow.open.clear()
    world.clock.advance(0.6)
    # served at once from the entry while one lookup runs behind it (the store answers nothing yet)
    principals = [await asyncio.wait_for(world.gateway.authenticate(plaintext), 1) for _ in range(5)]
    assert {p.key.name for p in principals} == {"dave"} and slow.lookups == 2
    slow.open.set()
    await asyncio.sleep(0)  # the refresh lands: the entry is now from t=0.6
    await asyncio.sleep(0)
    (key,) = [k for k in await world.keys.list() if k.name == "dave"]
    await world.keys.set_active(key.id, active=False)  # as another process would
    slow.open.clear()
    world.clock.advance(1.01)  # past the refreshed entry's time: the request waits for the store
    waiting = asyncio.create_task(world.gateway.authenticate(plaintext))
    await asyncio.sleep(0)
    assert not waiting.done()
    slow.open.set()
    with pytest.raises(PermissionDeniedError):
        await waiting
