"""API keys: minted as ``apk_`` plus 43 URL-safe base64 characters, stored only as a SHA-256 digest and a
short display prefix."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import attrs

KEY_PREFIX = "apk_"
DISPLAY_PREFIX_LENGTH = 12


def digest_of(plaintext: str) -> str:
    """The stored form of a key: hex SHA-256. A fast hash is right here: keys carry 256 bits of entropy."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def mint_plaintext(random_bytes: bytes) -> str:
    if len(random_bytes) != 32:
        raise ValueError("a key is minted from exactly 32 random bytes")
    return KEY_PREFIX + base64.urlsafe_b64encode(random_bytes).decode().rstrip("=")


def display_prefix(plaintext: str) -> str:
    return plaintext[:DISPLAY_PREFIX_LENGTH]


@attrs.frozen(kw_only=True)
class ApiKey:
    id: str
    digest: str = attrs.field(repr=False)
    prefix: str
    name: str
    plan: str
    active: bool = True
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@attrs.frozen
class IssuedKey:
    """A freshly minted key: the only moment the plaintext exists."""

    key: ApiKey
    plaintext: str = attrs.field(repr=False)
