"""The adapter side of the upstream error policy (``apipod.dialects.upstream_faults``): binding a dialect's
decoder to the wall clock, and telling the operator what an upstream said when the client may not hear it.

A decoded error's ``message`` is all a client ever reads; its ``detail`` (the upstream's own text) is logged
here and nowhere else: WARNING for a refused account (the operator has to act), INFO for the rest. Before
it is logged, every credential apipod sent in that request is cut out of it, in case the upstream echoed
one back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from apipod.application.ports import Clock
from apipod.domain.catalog import Upstream
from apipod.domain.errors import UpstreamAuthError, UpstreamError, UpstreamRejectedError

__all__ = ["DatedDecoder", "configured_secrets", "dated", "log_upstream_error", "scrub"]

log = logging.getLogger("apipod.upstream")

REDACTED = "[redacted]"
_SECRET_WORDS = ("auth", "key", "token", "secret", "cookie")  # authorization, x-api-key, x-goog-api-key...
_MIN_SECRET = 6  # shorter values (an empty Bearer, "none") would redact ordinary words
_MAX_LOGGED = 500


class DatedDecoder(Protocol):
    """A dialect's ``decode_error`` that reads absolute times (an HTTP-date ``Retry-After``, a reset
    timestamp) against ``now``."""

    def __call__(
        self, status: int, body: bytes, headers: Mapping[str, str], *, now: datetime | None = None
    ) -> UpstreamError: ...


def dated(decode: DatedDecoder, clock: Clock | None) -> Callable[[int, bytes, Mapping[str, str]], UpstreamError]:
    """``decode`` told the clock's time at each call; without a clock, absolute times are ignored (the
    dispatcher's default rest applies)."""
    if clock is None:
        return lambda status, body, headers: decode(status, body, headers)
    return lambda status, body, headers: decode(status, body, headers, now=clock.now())


def log_upstream_error(upstream: str, status: int, error: UpstreamError, sent: Mapping[str, str]) -> None:
    """One line per error answer: the status and class always; the upstream's text (scrubbed of the
    credentials in ``sent``, the request's headers) when the client was not given it."""
    kind = type(error).__name__
    if isinstance(error, UpstreamRejectedError) or not error.detail:
        log.info("upstream %s: HTTP %d (%s)", upstream, status, kind)
        return
    text = scrub(error.detail, sent)[:_MAX_LOGGED]
    level = logging.WARNING if isinstance(error, UpstreamAuthError) else logging.INFO
    log.log(level, "upstream %s: HTTP %d (%s): %s", upstream, status, kind, text)


def configured_secrets(upstream: Upstream) -> dict[str, str]:
    """What ``upstream`` is configured with that an echo must not put in the log, named for ``scrub``: every
    account's secret (a refresh or GitHub token is never itself among the headers sent), every configured
    header value (custom headers carry credentials under any name) and the secret-named string options."""
    found = {f"secret-account-{a.index}": a.secret for a in upstream.accounts}
    found.update({f"secret-header-{name}": value for name, value in upstream.headers.items()})
    for name, value in upstream.options.items():
        if isinstance(value, str) and any(word in name.lower() for word in _SECRET_WORDS):
            found[f"secret-option-{name}"] = value
    return found


def scrub(text: str, sent: Mapping[str, str]) -> str:
    """``text`` without any credential apipod sent (a header value, or the token after ``Bearer``)."""
    for name, value in sent.items():
        if not any(word in name.lower() for word in _SECRET_WORDS):
            continue
        for secret in (value, value.partition(" ")[2]):
            secret = secret.strip()
            if len(secret) >= _MIN_SECRET:
                text = text.replace(secret, REDACTED)
    return text
