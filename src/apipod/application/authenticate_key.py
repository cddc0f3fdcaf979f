"""AuthenticateKey: from a presented credential to the key and its plan."""

from __future__ import annotations

import asyncio

import attrs

from apipod.application.ports import CatalogStore, Clock, KeyRepository
from apipod.application.settings import GovernanceSettings
from apipod.domain.catalog import Plan, find_plan
from apipod.domain.errors import AuthenticationError, PermissionDeniedError
from apipod.domain.keys import ApiKey, digest_of


@attrs.frozen
class Principal:
    key: ApiKey
    plan: Plan


class AuthenticateKey:
    """Rules:
    - no credential, or one no key hashes to: AuthenticationError (401);
    - a secret replaced by a rotation is the key's until its grace period ends, then it is unknown (401);
    - an inactive or expired key, or one whose plan is gone: PermissionDeniedError (403);
    - lookups are cached for ``key_cache_ttl`` seconds by digest, so a revocation reaches every process
      within that time without a database round trip per request; past half that time one lookup refreshes
      an entry in the background, and a request waits only for an entry past its time (for one lookup,
      however many requests ask);
    - the key's last use is noted at most every ``touch_interval`` seconds.
    """

    def __init__(self, keys: KeyRepository, catalog: CatalogStore, clock: Clock, settings: GovernanceSettings) -> None:
        self._keys = keys
        self._catalog = catalog
        self._clock = clock
        self._ttl = settings.key_cache_ttl
        self._fresh = self._ttl / 2  # an entry younger than this is served without a refresh
        self._touch_interval = settings.touch_interval
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._fetching: dict[str, asyncio.Task[ApiKey | None]] = {}
        self._forgotten = 0  # bumped by ``forget``: a lookup begun before it does not fill the cache
        self._touched: dict[str, float] = {}

    async def execute(self, credential: str | None) -> Principal:
        if not credential:
            raise AuthenticationError(
                "Missing API key: send it as 'Authorization: Bearer <key>' or in the 'x-api-key' header."
            )
        # The digest is the lookup key, so comparison happens on hashes in the store's index; no early-exit
        # comparison of the plaintext ever happens.
        digest = digest_of(credential)
        key = await self._lookup(digest)
        now = self._clock.now()
        # A rotated-out secret is refused once its grace ends, even from the cache (the check is per request).
        if key is None or not key.accepts(digest, now):
            raise AuthenticationError("Invalid API key.")
        if not key.active:
            raise PermissionDeniedError("This API key has been revoked.")
        if key.is_expired(now):
            raise PermissionDeniedError("This API key has expired.")
        catalog = await self._catalog.snapshot()
        plan = find_plan(catalog, key.plan)
        if plan is None:
            raise PermissionDeniedError(f"This API key's plan '{key.plan}' no longer exists.")
        await self._touch(key)
        return Principal(key=key, plan=plan)

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached lookups (all, or one key's) so a change is seen at once."""
        self._forgotten += 1
        self._fetching.clear()
        if key_id is None:
            self._cache.clear()
            return
        for digest, (_, key) in list(self._cache.items()):
            if key is not None and key.id == key_id:
                del self._cache[digest]

    async def _lookup(self, digest: str) -> ApiKey | None:
        now = self._clock.monotonic()
        cached = self._cache.get(digest)
        if cached is not None:
            age = now - cached[0]
            if age < self._fresh:
                return cached[1]
            if age < self._ttl:
                # Still trusted: refreshed in the background, so that under steady use no request waits for
                # the store. Waiting for it at expiry held every request in flight for one lookup, several
                # turns of a busy loop (on PostgreSQL at 64 connections, a max of 130 ms once a second;
                # docs/benchmarks.md, tenth pass).
                if digest not in self._fetching:
                    self._fetch_soon(digest, now)
                return cached[1]
        # One lookup per digest at a time, however many requests ask meanwhile.
        fetching = self._fetching.get(digest) or self._fetch_soon(digest, now)
        # shielded: a request that gives up (its client gone) does not cancel the lookup the others wait for
        return await asyncio.shield(fetching)

    def _fetch_soon(self, digest: str, now: float) -> asyncio.Task[ApiKey | None]:
        fetching = self._fetching[digest] = asyncio.ensure_future(self._fetch(digest, now))
        fetching.add_done_callback(_retrieved)
        return fetching

    async def _fetch(self, digest: str, now: float) -> ApiKey | None:
        forgotten = self._forgotten
        try:
            key = await self._keys.by_digest(digest)
        finally:
            if self._fetching.get(digest) is asyncio.current_task():
                del self._fetching[digest]
        if forgotten == self._forgotten:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = (now, key)
        return key

    async def _touch(self, key: ApiKey) -> None:
        now = self._clock.monotonic()
        last = self._touched.get(key.id)
        if last is not None and now - last < self._touch_interval:
            return
        self._touched[key.id] = now
        await self._keys.touch(key.id, self._clock.now())


def _retrieved(task: asyncio.Task[ApiKey | None]) -> None:
    """Marks a failed lookup's error as seen when every request that waited for it has gone."""
    if not task.cancelled():
        task.exception()
