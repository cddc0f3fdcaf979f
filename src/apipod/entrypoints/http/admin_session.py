"""The dashboard's sign-in: a signed, expiring session cookie and the CSRF token bound to it.

Nothing is stored: the cookie carries its expiry and a random nonce, signed with HMAC-SHA256 under a key
derived from the admin secret, so any process that knows the secret accepts it (workers, restarts) and
changing the secret signs everyone out. The CSRF token is a second HMAC of the same cookie, so it cannot be
forged without the key, and a page that reads it from ``GET /admin/session`` (same origin only) can send it
back in ``x-csrf-token`` on every state-changing call. The cookie itself is HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "apipod_admin"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_VERSION = "v1"
_KEY_LABEL = b"apipod admin session v1"
_CSRF_LABEL = b"csrf:"
_MAX_COOKIE_CHARS = 256


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class AdminSessions:
    """Issues and checks dashboard sessions for one admin secret."""

    __slots__ = ("_key", "ttl_seconds")

    def __init__(self, admin_secret: str, *, ttl_seconds: float = 12 * 3600) -> None:
        # A derived key: the admin secret itself never signs anything another party sees.
        self._key = hmac.new(admin_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self.ttl_seconds = ttl_seconds

    def issue(self, now: float) -> tuple[str, str]:
        """A new session valid for ``ttl_seconds`` from ``now`` (Unix seconds): (cookie value, CSRF token)."""
        expires = int(now + self.ttl_seconds)
        payload = f"{_VERSION}.{expires}.{_b64(secrets.token_bytes(18))}"
        cookie = f"{payload}.{self._sign(payload.encode())}"
        return cookie, self.csrf_of(cookie)

    def csrf_of(self, cookie: str) -> str:
        """The CSRF token bound to ``cookie`` (whether the cookie is valid is ``check``'s question)."""
        return self._sign(_CSRF_LABEL + cookie.encode())

    def expires_at(self, cookie: str) -> int | None:
        """The cookie's expiry (Unix seconds) if it is well formed and signed by this key, else None."""
        if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
            return None
        payload, _, signature = cookie.rpartition(".")
        parts = payload.split(".")
        if len(parts) != 3 or parts[0] != _VERSION or not parts[1].isdigit():
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(payload.encode()).encode()):
            return None
        return int(parts[1])

    def check(self, cookie: str | None, csrf: str | None, *, method: str, now: float) -> bool:
        """Whether a request carrying ``cookie`` (and ``csrf`` from the header) is signed in: a valid
        signature, not expired at ``now``, and, unless ``method`` is safe, the matching CSRF token."""
        if cookie is None:
            return False
        expires = self.expires_at(cookie)
        if expires is None or now >= expires:
            return False
        if method.upper() in SAFE_METHODS:
            return True
        return csrf is not None and hmac.compare_digest(csrf.encode(), self.csrf_of(cookie).encode())

    def _sign(self, data: bytes) -> str:
        return _b64(hmac.new(self._key, data, hashlib.sha256).digest())
