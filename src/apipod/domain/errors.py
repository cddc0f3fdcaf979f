"""The error tree. Fields carry meaning, never HTTP: the entrypoints map each class to a status and a body
in the caller's dialect.
"""

from __future__ import annotations


class ApipodError(Exception):
    """Base of every error apipod raises on purpose. ``message`` is safe to show the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(ApipodError):
    """The request body or its parameters are wrong. ``param`` names the offending field when known; ``code`` is
    a machine-readable reason where a client's protocol defines one (``previous_response_not_found``)."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class RequestTooLargeError(ApipodError):
    pass


class AuthenticationError(ApipodError):
    """No credentials, malformed credentials, or an unknown key."""


class PermissionDeniedError(ApipodError):
    """The key is known but may not be used: inactive, expired, or a bad admin secret."""


class NotFoundError(ApipodError):
    """A named thing (model under a strict plan, plan, key) does not exist."""


class ModelNotFoundError(NotFoundError):
    pass


class ConflictError(ApipodError):
    """A write would break a uniqueness rule (a duplicate name)."""


class QuotaExceededError(ApipodError):
    """A key's budget has no room. ``window`` names it; ``retry_after`` is seconds until it resets."""

    def __init__(self, message: str, *, window: str, retry_after: float) -> None:
        super().__init__(message)
        self.window = window
        self.retry_after = retry_after


class RateLimitedError(ApipodError):
    """A gateway limit (requests per minute, concurrency) has no room now."""

    def __init__(self, message: str, *, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(ApipodError):
    """A store failed (database down, constraint broken unexpectedly)."""


class UpstreamError(ApipodError):
    """An upstream failed. ``retry_after`` (seconds) is what the upstream asked for, when it said.

    ``detail`` is the upstream's own text, for the operator's log only: it may name the account (a key
    fragment, an organisation, a quota), so it is never rendered to a client and is not part of ``str()``.
    """

    def __init__(self, message: str, *, upstream: str = "", retry_after: float | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.upstream = upstream
        self.retry_after = retry_after
        self.detail = detail


class UpstreamRejectedError(UpstreamError):
    """The upstream refused the request as the caller's fault (400, 404, 413, 422): passed on as is."""

    def __init__(self, message: str, *, status: int, upstream: str = "", detail: str = "") -> None:
        super().__init__(message, upstream=upstream, detail=detail)
        self.status = status


class UpstreamAuthError(UpstreamError):
    """The upstream refused apipod's account credentials (401, 403): the account is at fault."""


class UpstreamRateLimitedError(UpstreamError):
    """The upstream answered 429. ``exhausted`` tells a spent quota from a short rate limit."""

    def __init__(
        self,
        message: str,
        *,
        upstream: str = "",
        retry_after: float | None = None,
        exhausted: bool = False,
        detail: str = "",
    ) -> None:
        super().__init__(message, upstream=upstream, retry_after=retry_after, detail=detail)
        self.exhausted = exhausted


class UpstreamOverloadedError(UpstreamError):
    """The upstream is overloaded (Anthropic 529, 503)."""


class UpstreamUnavailableError(UpstreamError):
    """Connect error, timeout or 5xx: nothing usable came back."""


class UpstreamTimeoutError(UpstreamUnavailableError):
    """The upstream overran a time bound (``first_event`` or ``total``) while still talking."""


class UpstreamResponseTooLargeError(UpstreamUnavailableError):
    """The upstream's answer, one of its events or one tool call's arguments passed a size cap."""


class NoCapacityError(ApipodError):
    """Every candidate is limited or cooling down. ``retry_after`` is when the first one frees up."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
