"""AuthenticateKey: from a presented credential to the key and its plan."""

from __future__ import annotations

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
      within that time without a database round trip per request;
    - the key's last use is noted at most every ``touch_interval`` seconds.
    """

    def __init__(self, keys: KeyRepository, catalog: CatalogStore, clock: Clock, settings: GovernanceSettings) -> None:
        self._keys = keys
        self._catalog = catalog
        self._clock = clock
        self._ttl = settings.key_cache_ttl
        self._touch_interval = settings.touch_interval
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
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
        if key_id is None:
            self._cache.clear()
            return
        for digest, (_, key) in list(self._cache.items()):
            if key is not None and key.id == key_id:
                del self._cache[digest]

    async def _lookup(self, digest: str) -> ApiKey | None:
        now = self._clock.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        key = await self._keys.by_digest(digest)
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
