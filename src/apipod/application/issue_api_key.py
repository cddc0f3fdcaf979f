"""IssueApiKey and the other key administration use cases."""

from __future__ import annotations

from datetime import datetime

from apipod.application.ports import CatalogStore, Clock, IdGenerator, KeyRepository, Randomness
from apipod.domain.catalog import find_plan
from apipod.domain.errors import InvalidRequestError, NotFoundError
from apipod.domain.keys import ApiKey, IssuedKey, digest_of, display_prefix, mint_plaintext


class IssueApiKey:
    """Rules:
    - the holder's name is required and the plan must exist (InvalidRequestError otherwise);
    - the key is minted from 32 cryptographically random bytes and stored only as digest plus prefix;
    - the plaintext is returned once, here, and never again.
    """

    def __init__(
        self, keys: KeyRepository, catalog: CatalogStore, clock: Clock, randomness: Randomness, ids: IdGenerator
    ) -> None:
        self._keys = keys
        self._catalog = catalog
        self._clock = clock
        self._randomness = randomness
        self._ids = ids

    async def execute(self, *, name: str, plan: str, expires_at: datetime | None = None) -> IssuedKey:
        if not name.strip():
            raise InvalidRequestError("A key needs a holder's name.", param="name")
        if find_plan(await self._catalog.snapshot(), plan) is None:
            raise InvalidRequestError(f"Unknown plan '{plan}'.", param="tier")
        now = self._clock.now()
        if expires_at is not None and expires_at <= now:
            raise InvalidRequestError("The expiry must be in the future.", param="expires_at")
        plaintext = mint_plaintext(self._randomness.token_bytes(32))
        key = ApiKey(
            id=self._ids.new_id("key_"),
            digest=digest_of(plaintext),
            prefix=display_prefix(plaintext),
            name=name.strip(),
            plan=plan,
            active=True,
            created_at=now,
            expires_at=expires_at,
        )
        await self._keys.add(key)
        return IssuedKey(key=key, plaintext=plaintext)


class ManageKeys:
    """Listing and revoking keys. A revoked key answers 403 from then on."""

    def __init__(self, keys: KeyRepository) -> None:
        self._keys = keys

    async def list(self) -> list[ApiKey]:
        return await self._keys.list()

    async def set_active(self, key_id: str, *, active: bool) -> ApiKey:
        if await self._keys.get(key_id) is None:
            raise NotFoundError(f"No key with id '{key_id}'.")
        return await self._keys.set_active(key_id, active=active)
