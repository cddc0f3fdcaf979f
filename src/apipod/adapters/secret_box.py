"""Provider secrets encrypted at rest: AES-256-GCM under the key in ``APIPOD_SECRET_KEY``.

A sealed value is the text ``enc:v1:<key id>:<urlsafe base64 of nonce + ciphertext>``. The key id (first 8
hex digits of the key's SHA-256) tells which key sealed it, so a wrong key is reported as such rather than
as damage, and ``apipod rotate-secret-key`` knows what to re-encrypt. The associated data is where the value
is stored (``upstream_accounts/<upstream>/<index>``, ...): a ciphertext copied to another row does not open.

A stored value without the ``enc:`` prefix is legacy plaintext (written before encryption existed): it is
read as is, and the stores re-seal such values when they open (see ``reseal`` in the catalog stores).
Messages never contain a secret, only key ids and where the value is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apipod.domain.errors import StorageError

KEY_VARIABLE = "APIPOD_SECRET_KEY"
PREFIX = "enc:v1:"
_NONCE_BYTES = 12
_KEY_BYTES = 32
_AAD_PREFIX = b"apipod-secret/v1|"


class SecretKeyError(StorageError):
    """The secret key is malformed, or is not the key the stored secrets were sealed with."""


def generate_key() -> str:
    """A fresh key, as the text ``APIPOD_SECRET_KEY`` takes (URL-safe base64 of 32 random bytes). Never one that
    starts with "-", which a command line would take for an option (``--new-key -x...``)."""
    while True:
        key = base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode()
        if not key.startswith("-"):
            return key


def parse_key(text: str) -> bytes:
    """The 32 key bytes of a ``APIPOD_SECRET_KEY`` value. Raises SecretKeyError (without echoing it)."""
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        if base64.urlsafe_b64encode(key).decode().rstrip("=") != raw.rstrip("="):
            raise ValueError("not canonical base64")
    except (ValueError, binascii.Error):
        key = b""
    if len(key) != _KEY_BYTES:
        raise SecretKeyError(
            f"{KEY_VARIABLE} must be 32 random bytes in URL-safe base64 (44 characters, as "
            "`python -c 'import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())'` prints)."
        )
    return key


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def stored_key_id(stored: str) -> str | None:
    """The key id of a sealed value; None for legacy plaintext."""
    if not stored.startswith(PREFIX):
        return None
    key_id, _, _ = stored[len(PREFIX) :].partition(":")
    return key_id


class SecretBox:
    """Seals and opens secret strings with one key. ``source`` says where the key came from, for messages."""

    def __init__(self, key: bytes, *, source: str = KEY_VARIABLE) -> None:
        if len(key) != _KEY_BYTES:
            raise SecretKeyError(f"{KEY_VARIABLE} must be a 32-byte key.")
        self._aead = AESGCM(key)
        self.key_id = key_id_of(key)
        self.source = source

    @classmethod
    def from_text(cls, text: str, *, source: str = KEY_VARIABLE) -> SecretBox:
        return cls(parse_key(text), source=source)

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def seal(self, plaintext: str, where: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _AAD_PREFIX + where.encode())
        return f"{PREFIX}{self.key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, stored: str, where: str) -> str:
        """The plaintext of a stored value; legacy plaintext comes back unchanged.

        Raises:
            SecretKeyError: sealed under another key, altered, or copied from another place.
        """
        key_id = stored_key_id(stored)
        if key_id is None:
            return stored
        if key_id != self.key_id:
            raise SecretKeyError(
                f"The stored provider secrets were encrypted with key id {key_id}; {self._described()} has key "
                f"id {self.key_id}. Set {KEY_VARIABLE} to the key they were encrypted with."
            )
        body = stored[len(PREFIX) + len(key_id) + 1 :]
        try:
            raw = base64.urlsafe_b64decode(body.encode())
            plaintext = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _AAD_PREFIX + where.encode())
            return plaintext.decode()
        except (ValueError, binascii.Error, InvalidTag):
            raise SecretKeyError(
                f"The stored provider secret at {where} does not decrypt with {self._described()} (key id "
                f"{self.key_id}): it was altered or copied from elsewhere. Store it again."
            ) from None

    def is_current(self, stored: str) -> bool:
        """Sealed under this box's key (so re-sealing it would change nothing)."""
        return stored_key_id(stored) == self.key_id

    def _described(self) -> str:
        return KEY_VARIABLE if self.source == KEY_VARIABLE else f"{KEY_VARIABLE} (unset; read from {self.source})"


# -- what the catalog stores seal ----------------------------------------------------------------------------

_SECRET_OPTION_WORDS = ("secret", "token", "password", "api_key", "apikey")


def is_secret_option(name: str) -> bool:
    """Options that hold credentials (``oauth_client_secret``, ``refresh_token``, ...); URLs are not secret."""
    lowered = name.lower()
    return not lowered.endswith("_url") and any(word in lowered for word in _SECRET_OPTION_WORDS)


def account_place(upstream: str, index: int) -> str:
    return f"upstream_accounts/{upstream}/{index}"


def header_place(upstream: str, header: str) -> str:
    return f"upstreams/{upstream}/headers/{header}"


def option_place(upstream: str, option: str) -> str:
    return f"upstreams/{upstream}/options/{option}"


def seal_with(box: SecretBox | None, plaintext: str, where: str) -> str:
    return plaintext if box is None else box.seal(plaintext, where)


def open_with(box: SecretBox | None, stored: str, where: str) -> str:
    if box is not None:
        return box.open(stored, where)
    key_id = stored_key_id(stored)
    if key_id is not None:
        raise SecretKeyError(
            f"The stored provider secrets were encrypted with key id {key_id}, and no key was given: "
            f"set {KEY_VARIABLE} to the key they were encrypted with."
        )
    return stored


def seal_headers(box: SecretBox | None, upstream: str, headers: dict[str, str]) -> dict[str, str]:
    return {name: seal_with(box, value, header_place(upstream, name)) for name, value in headers.items()}


def open_headers(box: SecretBox | None, upstream: str, headers: dict[str, object]) -> dict[str, object]:
    return {
        name: open_with(box, value, header_place(upstream, name)) if isinstance(value, str) else value
        for name, value in headers.items()
    }


def seal_options(box: SecretBox | None, upstream: str, options: dict[str, object]) -> dict[str, object]:
    return {
        name: seal_with(box, value, option_place(upstream, name))
        if isinstance(value, str) and is_secret_option(name)
        else value
        for name, value in options.items()
    }


def open_options(box: SecretBox | None, upstream: str, options: dict[str, object]) -> dict[str, object]:
    return {
        name: open_with(box, value, option_place(upstream, name))
        if isinstance(value, str) and is_secret_option(name)
        else value
        for name, value in options.items()
    }


def reseal(source: SecretBox | None, target: SecretBox, stored: str, where: str) -> str | None:
    """``stored`` sealed under ``target`` (opened with ``source``); None when it already is."""
    if target.is_current(stored):
        return None
    return target.seal(open_with(source, stored, where), where)


def reseal_headers(
    source: SecretBox | None, target: SecretBox, upstream: str, headers: dict[str, object]
) -> dict[str, object] | None:
    """The headers re-sealed under ``target``; None when nothing changes."""
    changed = False
    result = dict(headers)
    for name, value in headers.items():
        if isinstance(value, str):
            new = reseal(source, target, value, header_place(upstream, name))
            if new is not None:
                result[name], changed = new, True
    return result if changed else None


def reseal_options(
    source: SecretBox | None, target: SecretBox, upstream: str, options: dict[str, object]
) -> dict[str, object] | None:
    """The options with their secret ones re-sealed under ``target``; None when nothing changes."""
    changed = False
    result = dict(options)
    for name, value in options.items():
        if isinstance(value, str) and is_secret_option(name):
            new = reseal(source, target, value, option_place(upstream, name))
            if new is not None:
                result[name], changed = new, True
    return result if changed else None
