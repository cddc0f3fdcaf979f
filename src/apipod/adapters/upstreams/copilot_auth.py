"""Copilot tokens: the short-lived bearer minted from an account's GitHub token (copilot.md §3).

Each GitHub token's Copilot token is cached, refreshed lazily a safety margin before it expires, and minted
by one exchange however many requests need it at that moment (a single-flight task per GitHub token).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import attrs
import httpx
import orjson

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._http import UpstreamHttp
from apipod.application.ports import Clock
from apipod.dialects import openai
from apipod.domain.catalog import Upstream
from apipod.domain.errors import UpstreamAuthError, UpstreamError, UpstreamUnavailableError

log = logging.getLogger("apipod.upstream.copilot")

DEFAULT_TOKEN_URL = "https://api.github.com/copilot_internal/v2/token"  # noqa: S105 (a URL, not a secret)
DEFAULT_API_BASE = "https://api.githubcopilot.com"
# Editor identity headers (copilot.md §3, §5.1). They drift with editor releases: every one is an option.
DEFAULT_EDITOR_VERSION = "vscode/1.104.3"
DEFAULT_EDITOR_PLUGIN_VERSION = "copilot-chat/0.26.7"
DEFAULT_USER_AGENT = "GitHubCopilotChat/0.26.7"
DEFAULT_INTEGRATION_ID = "vscode-chat"
GITHUB_API_VERSION = "2025-04-01"

REFRESH_MARGIN = 300.0  # refresh when fewer than five minutes are left (copilot.md §3, refresh policy)
_FALLBACK_LIFETIME = 1500.0  # a token response without usable expiry data: assume the usual 25 minutes
_COPILOT_DOMAIN = "githubcopilot.com"

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def editor_headers(options: Mapping[str, Any]) -> dict[str, str]:
    """The editor identity an upstream's options configure (lowercase names), defaults filled in."""
    return {
        "editor-version": str(options.get("editor_version") or DEFAULT_EDITOR_VERSION),
        "editor-plugin-version": str(options.get("editor_plugin_version") or DEFAULT_EDITOR_PLUGIN_VERSION),
        "user-agent": str(options.get("user_agent") or DEFAULT_USER_AGENT),
        "x-github-api-version": GITHUB_API_VERSION,
    }


def api_base(endpoints: object) -> str:
    """``endpoints.api`` when it is an https host under githubcopilot.com, else the public default.

    NOTE: the token response is the only source of this URL, and the Copilot token is sent there: a host
    outside Copilot's domain is never trusted (copilot.md §3).
    """
    url = endpoints.get("api") if isinstance(endpoints, Mapping) else None
    if not isinstance(url, str):
        return DEFAULT_API_BASE
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return DEFAULT_API_BASE
    host = (parts.hostname or "").lower()
    trusted = host == _COPILOT_DOMAIN or host.endswith("." + _COPILOT_DOMAIN)
    if parts.scheme != "https" or not trusted or parts.username or parts.password or port not in (None, 443):
        return DEFAULT_API_BASE
    return f"https://{host}{parts.path.rstrip('/')}"


@attrs.frozen
class CopilotToken:
    """A minted Copilot token. ``refresh_at`` and ``expires_at`` are on the clock's monotonic scale."""

    value: str = attrs.field(repr=False)
    api_base: str
    refresh_at: float
    expires_at: float


class SingleFlight(Generic[K, V]):
    """Runs one ``fn()`` per key at a time; concurrent callers of the same key share its result.

    The work runs as a task shielded from its callers, so a caller that gives up (a client disconnects)
    does not cancel the refresh the others are waiting for.
    """

    __slots__ = ("_flights",)

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, fn: Callable[[], Awaitable[V]]) -> V:
        task = self._flights.get(key)
        if task is None:

            async def work() -> V:
                return await fn()

            task = asyncio.ensure_future(work())
            self._flights[key] = task
            task.add_done_callback(functools.partial(self._landed, key))
        return await asyncio.shield(task)

    def _landed(self, key: K, task: asyncio.Task[V]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have left, and that is not worth a warning


class CopilotTokens:
    """The Copilot token cache, keyed by (token URL, GitHub token).

    Args:
        client: the shared HTTP client.
        clock: ``now()`` reads the response's absolute ``expires_at``; ``monotonic()`` times the refresh.
        margin: seconds before expiry at which a token counts as due for refresh.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        *,
        margin: float = REFRESH_MARGIN,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._http = UpstreamHttp(client, decode_error=exchange_error, retry=retry)
        self._clock = clock
        self._margin = margin
        self._cache: dict[tuple[str, str], CopilotToken] = {}
        self._flight: SingleFlight[tuple[str, str], CopilotToken] = SingleFlight()

    async def get(self, upstream: Upstream, github_token: str) -> CopilotToken:
        """The account's current Copilot token, minted or refreshed when due.

        Raises:
            UpstreamAuthError: GitHub refused the token (revoked, no Copilot seat).
            UpstreamError: GitHub was unreachable, rate limited or failing, and no still-valid token is cached.
        """
        url = str(upstream.options.get("token_url") or DEFAULT_TOKEN_URL)
        key = (url, github_token)
        token = self._cache.get(key)
        if token is not None and self._clock.monotonic() < token.refresh_at:
            return token
        return await self._flight.run(key, functools.partial(self._refresh, upstream, key))

    def invalidate(self, upstream: Upstream, github_token: str, token: CopilotToken) -> None:
        """Drop ``token`` (the chat API refused it). A newer token already cached is kept."""
        key = (str(upstream.options.get("token_url") or DEFAULT_TOKEN_URL), github_token)
        if self._cache.get(key) is token:
            del self._cache[key]

    async def _refresh(self, upstream: Upstream, key: tuple[str, str]) -> CopilotToken:
        cached = self._cache.get(key)
        if cached is not None and self._clock.monotonic() < cached.refresh_at:
            return cached  # another flight landed between the caller's check and this one
        url, github_token = key
        headers = {"authorization": f"token {github_token}", "accept": "application/json"}
        headers.update(editor_headers(upstream.options))
        try:
            answer = await self._http.request_json(upstream, "GET", url, headers=headers)
        except UpstreamError as exc:
            if (
                cached is not None
                and not isinstance(exc, UpstreamAuthError)
                and self._clock.monotonic() < cached.expires_at
            ):
                log.info("upstream %s: Copilot token refresh failed; the current one is still valid", upstream.name)
                return cached
            self._cache.pop(key, None)
            raise
        token = self._parse(upstream, answer)
        self._cache[key] = token
        return token

    def _parse(self, upstream: Upstream, answer: object) -> CopilotToken:
        value = answer.get("token") if isinstance(answer, Mapping) else None
        if not isinstance(value, str) or not value or not isinstance(answer, Mapping):
            raise UpstreamUnavailableError("GitHub's Copilot token answer holds no token.", upstream=upstream.name)
        monotonic = self._clock.monotonic()
        lifetime, refresh_in = _number(answer.get("expires_at")), _number(answer.get("refresh_in"))
        if lifetime > 0:
            lifetime -= self._clock.now().timestamp()
        if lifetime <= 0:  # absent, or already past by our clock (skew): trust the relative refresh_in
            lifetime = refresh_in + self._margin if refresh_in > 0 else _FALLBACK_LIFETIME
        refresh_after = lifetime - self._margin
        if refresh_after < lifetime / 2:  # a short-lived token: refresh at half-life, not at every request
            refresh_after = lifetime / 2
        if refresh_in > 0:
            refresh_after = min(refresh_after, refresh_in)
        return CopilotToken(
            value=value,
            api_base=api_base(answer.get("endpoints")),
            refresh_at=monotonic + refresh_after,
            expires_at=monotonic + lifetime,
        )


def exchange_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """The token exchange's refusals are the account's fault, never the chat client's."""
    detail = _detail(body)
    if detail:
        log.info("Copilot token exchange: HTTP %d: %s", status, detail)
    if status == 401:
        return UpstreamAuthError(
            "GitHub rejected the account's GitHub token (HTTP 401): it is invalid or revoked; "
            "run `apipod copilot login` again."
        )
    if status in (403, 404):
        return UpstreamAuthError(
            f"GitHub refused to issue a Copilot token (HTTP {status}): the GitHub account has no "
            "Copilot access or its subscription lapsed."
        )
    if status == 429 or status >= 500:
        return openai.decode_error(status, body, headers)
    return UpstreamAuthError(f"GitHub refused to issue a Copilot token (HTTP {status}).")


def _detail(body: bytes) -> str:
    try:
        payload = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(payload, Mapping):
        return ""
    details = payload.get("error_details")
    message = details.get("message") if isinstance(details, Mapping) else payload.get("message")
    return message[:300] if isinstance(message, str) else ""


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
