"""API keys: minted as ``apk_`` plus 43 URL-safe base64 characters, stored only as a SHA-256 digest and a
short display prefix."""

from __future__ import annotations

import base64
import enum
import hashlib
from datetime import datetime

import attrs

KEY_PREFIX = "apk_"
DISPLAY_PREFIX_LENGTH = 12
MAX_ROTATION_GRACE_SECONDS = 30 * 86_400  # how long a rotated-out secret may keep working, at most


class KeyStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


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
    # After a rotation with a grace period: the replaced secret's digest, accepted until ``previous_valid_until``.
    previous_digest: str | None = attrs.field(default=None, repr=False)
    previous_valid_until: datetime | None = None

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def accepts(self, digest: str, now: datetime) -> bool:
        """Whether a presented secret of this digest is this key's: the current one, or the replaced one
        during its grace period."""
        if digest == self.digest:
            return True
        return (
            digest == self.previous_digest and self.previous_valid_until is not None and now < self.previous_valid_until
        )

    def status(self, now: datetime) -> KeyStatus:
        """Revoked (inactive), expired, or active: how the admin API filters and shows keys."""
        if not self.active:
            return KeyStatus.REVOKED
        return KeyStatus.EXPIRED if self.is_expired(now) else KeyStatus.ACTIVE


@attrs.frozen
class IssuedKey:
    """A freshly minted key: the only moment the plaintext exists."""

    key: ApiKey
    plaintext: str = attrs.field(repr=False)
