"""Key administration beyond issuing: finding keys page by page, changing them, rotating their secret, and
reading one key's remaining budgets."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

import attrs

from apipod.application.authenticate_key import Principal
from apipod.application.key_standing import BudgetStanding, KeyStanding
from apipod.application.ports import CatalogStore, Clock, KeyRepository, Randomness
from apipod.domain.catalog import find_plan
from apipod.domain.errors import InvalidRequestError, NotFoundError
from apipod.domain.keys import (
    MAX_ROTATION_GRACE_SECONDS,
    ApiKey,
    IssuedKey,
    KeyStatus,
    digest_of,
    display_prefix,
    mint_plaintext,
)


class Unset(enum.Enum):
    """A field a PATCH leaves alone (distinct from ``None``, which for ``expires_at`` means "never")."""

    UNSET = "unset"


UNSET = Unset.UNSET


@attrs.frozen(kw_only=True)
class KeyFilter:
    """Every field given narrows the list; ``name_contains`` is case-insensitive."""

    plan: str | None = None
    status: KeyStatus | None = None
    name_contains: str | None = None


@attrs.frozen(kw_only=True)
class KeyPage:
    keys: tuple[ApiKey, ...]
    next_after: str | None  # the id to continue after; None on the last page


@attrs.frozen(kw_only=True)
class KeyChange:
    """What a PATCH changes: only the fields given."""

    name: str | Unset = UNSET
    plan: str | Unset = UNSET
    expires_at: datetime | Unset | None = UNSET
    active: bool | Unset = UNSET


class AdministerKeys:
    """Rules:
    - lists are oldest first and filtered in the order stored; ``after`` is the id the previous page ended on;
    - a change checks the plan exists and the expiry is in the future before anything is stored;
    - a rotation keeps the key's id, plan and budgets and mints a new secret; the old secret keeps working for
      ``grace_seconds`` (0: stops at once). Only the latest replaced secret has a grace period.
    """

    def __init__(
        self,
        keys: KeyRepository,
        catalog: CatalogStore,
        clock: Clock,
        randomness: Randomness,
        standing: KeyStanding,
    ) -> None:
        self._keys = keys
        self._catalog = catalog
        self._clock = clock
        self._randomness = randomness
        self._standing = standing

    async def page(self, where: KeyFilter, *, limit: int, after: str | None = None) -> KeyPage:
        keys = await self._keys.list()
        start = 0
        if after is not None:
            ids = [k.id for k in keys]
            if after not in ids:
                raise InvalidRequestError("The cursor does not name a listed key.", param="cursor")
            start = ids.index(after) + 1
        now = self._clock.now()
        matching = [k for k in keys[start:] if _matches(k, where, now)]
        chosen = tuple(matching[:limit])
        more = len(matching) > limit
        return KeyPage(keys=chosen, next_after=chosen[-1].id if more and chosen else None)

    async def get(self, key_id: str) -> ApiKey:
        key = await self._keys.get(key_id)
        if key is None:
            raise NotFoundError(f"No key with id '{key_id}'.")
        return key

    async def change(self, key_id: str, change: KeyChange) -> ApiKey:
        key = await self.get(key_id)
        updated = key
        if not isinstance(change.name, Unset):
            if not change.name.strip():
                raise InvalidRequestError("A key needs a holder's name.", param="name")
            updated = attrs.evolve(updated, name=change.name.strip())
        if not isinstance(change.plan, Unset):
            if find_plan(await self._catalog.snapshot(), change.plan) is None:
                raise InvalidRequestError(f"Unknown plan '{change.plan}'.", param="tier")
            updated = attrs.evolve(updated, plan=change.plan)
        if not isinstance(change.expires_at, Unset):
            if change.expires_at is not None and change.expires_at <= self._clock.now():
                raise InvalidRequestError("The expiry must be in the future.", param="expires_at")
            updated = attrs.evolve(updated, expires_at=change.expires_at)
        if not isinstance(change.active, Unset):
            updated = attrs.evolve(updated, active=change.active)
        if updated == key:
            return key
        return await self._keys.update(updated)

    async def rotate(self, key_id: str, *, grace_seconds: float = 0) -> IssuedKey:
        if not 0 <= grace_seconds <= MAX_ROTATION_GRACE_SECONDS:
            raise InvalidRequestError(
                f"grace_seconds must be between 0 and {MAX_ROTATION_GRACE_SECONDS}.", param="grace_seconds"
            )
        key = await self.get(key_id)
        plaintext = mint_plaintext(self._randomness.token_bytes(32))
        keeps_old = grace_seconds > 0
        rotated = attrs.evolve(
            key,
            digest=digest_of(plaintext),
            prefix=display_prefix(plaintext),
            previous_digest=key.digest if keeps_old else None,
            previous_valid_until=self._clock.now() + timedelta(seconds=grace_seconds) if keeps_old else None,
        )
        return IssuedKey(key=await self._keys.update(rotated), plaintext=plaintext)

    async def budgets(self, key_id: str) -> tuple[BudgetStanding, ...]:
        """The key's plan's budgets now; none when the plan is gone."""
        key = await self.get(key_id)
        plan = find_plan(await self._catalog.snapshot(), key.plan)
        if plan is None:
            return ()
        return await self._standing.execute(Principal(key=key, plan=plan))


def _matches(key: ApiKey, where: KeyFilter, now: datetime) -> bool:
    if where.plan is not None and key.plan != where.plan:
        return False
    if where.status is not None and key.status(now) is not where.status:
        return False
    return where.name_contains is None or where.name_contains.casefold() in key.name.casefold()
