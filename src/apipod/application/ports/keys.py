from __future__ import annotations

from datetime import datetime
from typing import Protocol

from apipod.domain.keys import ApiKey


class KeyRepository(Protocol):
    """Issued API keys, found by the digest of their plaintext."""

    async def add(self, key: ApiKey) -> None:
        """Store a new key. Raises ConflictError when its id or digest exists already."""
        ...

    async def by_digest(self, digest: str) -> ApiKey | None:
        """The key whose plaintext hashes to ``digest`` (its current or its previous secret), active or not;
        None when unknown. Whether a previous secret is still accepted is the caller's question."""
        ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def list(self) -> list[ApiKey]:
        """Every key, oldest first."""
        ...

    async def set_active(self, key_id: str, *, active: bool) -> ApiKey:
        """Activate or revoke a key and return its new record. Raises NotFoundError."""
        ...

    async def update(self, key: ApiKey) -> ApiKey:
        """Replace the record of ``key.id`` by ``key`` (name, plan, active, expiry, digests; ``created_at`` and
        ``last_used_at`` stay as stored) and return it; ``by_digest`` finds it by ``digest`` or, while
        set, ``previous_digest``. Raises NotFoundError, or ConflictError when the digest is another key's."""
        ...

    async def touch(self, key_id: str, when: datetime) -> None:
        """Note the key's last use. Best effort: a missing key is ignored."""
        ...
