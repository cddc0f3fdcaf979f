"""``apipod rotate-secret-key``: re-encrypt every stored provider secret under a new key.

The stores are opened with the current key (APIPOD_SECRET_KEY, else the key file), every secret is
re-sealed under the new key in one transaction, and only then is the key file (when it is the key's
source) replaced. Processes still running with the old key cannot read the secrets any more: stop them
first, or restart them with the new key.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs

from apipod.adapters.secret_box import KEY_VARIABLE, SecretBox, SecretKeyError, generate_key
from apipod.bootstrap.secret_key import resolve_secret_box, secret_key_path, write_key_file
from apipod.bootstrap.settings import ConfigError, Settings
from apipod.bootstrap.stores import open_stores


@attrs.frozen
class Rotation:
    old_key_id: str
    new_key_id: str
    rewritten: int  # stored rows: accounts, and upstreams with sealed headers or options
    key_file: Path | None  # the key file now holding the new key; None when APIPOD_SECRET_KEY is the source
    generated_key: str | None = attrs.field(default=None, repr=False)  # set when the new key was generated


async def rotate_secret_key(settings: Settings, new_key: str | None) -> Rotation:
    """Re-seal the stored provider secrets under ``new_key`` (generated when None).

    Raises:
        ConfigError: no database at rest, or the new key is malformed or the current one.
        SecretKeyError: the stored secrets do not open with the current key.
    """
    url = settings.database_url
    current = resolve_secret_box(url, settings.secret_key)  # creates the key file on a first run
    key_file = None if settings.secret_key else secret_key_path(url)
    if current is None:
        raise ConfigError(f"DATABASE_URL {url.split('://')[0]}:// keeps nothing at rest: there is no key to rotate")
    generated = generate_key() if new_key is None else None
    text = generated or new_key or ""
    try:
        target = SecretBox.from_text(text, source="the new key")
    except SecretKeyError as exc:
        raise ConfigError("the new key is not valid: " + exc.message) from None
    if current.key_id == target.key_id:
        raise ConfigError(f"the new key is the current one (key id {current.key_id}); give another key")
    # The new key is on disk before any stored secret depends on it, and replaces the old key file only
    # once the database has committed the new ciphertexts.
    staged = None if key_file is None else key_file.with_name(key_file.name + ".new")
    if staged is not None:
        write_key_file(staged, text)
    try:
        stores = await open_stores(url, secret_key=settings.secret_key)
        try:
            if stores.reseal is None:
                raise ConfigError("this database keeps no provider secrets at rest: there is no key to rotate")
            rewritten = await stores.reseal(target)
        finally:
            await stores.close()
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if staged is not None and key_file is not None:
        os.replace(staged, key_file)
    return Rotation(current.key_id, target.key_id, rewritten, key_file, generated)


def rotation_report(rotation: Rotation) -> str:
    """What the operator reads. The key itself only when it was generated and lives nowhere else."""
    lines = [
        f"Re-encrypted the provider secrets of {rotation.rewritten} stored row(s) from key id "
        f"{rotation.old_key_id} to key id {rotation.new_key_id}."
    ]
    if rotation.key_file is not None:
        lines.append(f"The key file {rotation.key_file} now holds the new key ({KEY_VARIABLE} is unset).")
    else:
        if rotation.generated_key is not None:
            lines.append(
                "The new key (shown once; store it like a password, it is kept nowhere else):\n"
                f"  {rotation.generated_key}"
            )
        lines.append(f"Now set {KEY_VARIABLE} to the new key (key id {rotation.new_key_id}) for every apipod process.")
    lines.append("Restart every running apipod process: until then they hold the old key and cannot read the secrets.")
    return "\n".join(lines)
