"""KeyRepository in a dict: for embedding, demos (``DATABASE_URL=memory://``) and use-case tests."""

from __future__ import annotations

import builtins
from datetime import datetime

import attrs

from apipod.application.ports import KeyRepository
from apipod.domain.errors import ConflictError, NotFoundError
from apipod.domain.keys import ApiKey


class InMemoryKeyRepository(KeyRepository):
    """Keys by id, with a digest index. Nothing awaits, so every method is atomic on the event loop."""

    def __init__(self) -> None:
        self._by_id: dict[str, ApiKey] = {}
        self._id_by_digest: dict[str, str] = {}

    async def add(self, key: ApiKey) -> None:
        if key.id in self._by_id:
            raise ConflictError(f"A key with id '{key.id}' exists already.")
        if key.digest in self._id_by_digest:
            raise ConflictError("A key with the same secret exists already.")
        self._by_id[key.id] = key
        self._id_by_digest[key.digest] = key.id

    async def by_digest(self, digest: str) -> ApiKey | None:
        key_id = self._id_by_digest.get(digest)
        return None if key_id is None else self._by_id[key_id]

    async def update(self, key: ApiKey) -> ApiKey:
        old = self._by_id.get(key.id)
        if old is None:
            raise NotFoundError(f"No key with id '{key.id}'.")
        for digest in (key.digest, key.previous_digest):
            if digest is not None and self._id_by_digest.get(digest, key.id) != key.id:
                raise ConflictError("A key with the same secret exists already.")
        updated = attrs.evolve(key, created_at=old.created_at, last_used_at=old.last_used_at)
        for digest in (old.digest, old.previous_digest):
            if digest is not None:
                self._id_by_digest.pop(digest, None)
        for digest in (updated.digest, updated.previous_digest):
            if digest is not None:
                self._id_by_digest[digest] = key.id
        self._by_id[key.id] = updated
        return updated

    async def get(self, key_id: str) -> ApiKey | None:
        return self._by_id.get(key_id)

    async def list(self) -> builtins.list[ApiKey]:
        # sorted() is stable: keys created at the same instant stay in insertion order.
        return sorted(self._by_id.values(), key=lambda k: k.created_at)

    async def set_active(self, key_id: str, *, active: bool) -> ApiKey:
        key = self._by_id.get(key_id)
        if key is None:
            raise NotFoundError(f"No key with id '{key_id}'.")
        updated = attrs.evolve(key, active=active)
        self._by_id[key_id] = updated
        return updated

    async def touch(self, key_id: str, when: datetime) -> None:
        key = self._by_id.get(key_id)
        if key is not None:
            self._by_id[key_id] = attrs.evolve(key, last_used_at=when)
