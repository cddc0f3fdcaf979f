"""Which key seals the provider secrets: ``APIPOD_SECRET_KEY``, else a key file kept beside the database.

The key file sits where the generated admin secret does (``<db>.secret-key`` beside a SQLite file,
``.apipod-secret-key`` in the working directory for other databases), is created 0600 on first run, and
is read on later runs. Losing it loses the stored provider secrets, so it must travel with the database.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from apipod.adapters.secret_box import KEY_VARIABLE, SecretBox, SecretKeyError, generate_key
from apipod.adapters.sqlite.database import MEMORY, sqlite_path_from_url
from apipod.bootstrap.settings import ConfigError

log = logging.getLogger("apipod")


def secret_key_path(database_url: str) -> Path | None:
    """Beside the SQLite file; in the working directory for other databases; None when nothing is at rest."""
    if database_url.startswith("memory:"):
        return None
    if database_url.startswith("sqlite:"):
        try:
            path = sqlite_path_from_url(database_url)
        except ValueError as exc:
            raise ConfigError(f"DATABASE_URL: {exc}") from None
        return None if path == MEMORY else Path(path + ".secret-key")
    return Path(".apipod-secret-key")


def resolve_secret_box(database_url: str, configured: str | None) -> SecretBox | None:
    """The box for ``configured`` (APIPOD_SECRET_KEY), else for the key file, generated when absent.

    Returns None for an in-memory database (nothing is stored at rest).

    Raises:
        ConfigError: the key (variable or file) is not a valid key; the message names APIPOD_SECRET_KEY.
    """
    if configured:
        return box_from_text(configured, KEY_VARIABLE)
    path = secret_key_path(database_url)
    if path is None:
        return None
    if path.is_file():
        return box_from_text(path.read_text(), str(path))
    key = generate_key()
    write_key_file(path, key)
    if not database_url.startswith("sqlite:"):
        log.warning(
            "%s is unset: generated a key for the provider secrets in %s. Keep it with the database; "
            "every apipod process on this database needs the same key, so set %s to its contents in each.",
            KEY_VARIABLE,
            path.resolve(),
            KEY_VARIABLE,
        )
    return SecretBox.from_text(key, source=str(path))


def box_from_text(text: str, source: str) -> SecretBox:
    try:
        return SecretBox.from_text(text, source=source)
    except SecretKeyError as exc:
        where = "" if source == KEY_VARIABLE else f" (read from {source}, as {KEY_VARIABLE} is unset)"
        raise ConfigError(exc.message + where) from None


def write_key_file(path: Path, key: str) -> None:
    """Write ``key`` to ``path`` atomically, private to this user (0600) from the moment it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    os.chmod(temporary, 0o600)  # an older temporary file would keep its mode through O_CREAT
    os.replace(temporary, path)
