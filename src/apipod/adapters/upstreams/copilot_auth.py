"""Copilot tokens: the short-lived bearer minted from an account's GitHub token (docs/protocols/copilot.md §3).

Each GitHub token's Copilot token is cached, refreshed lazily a safety margin before it expires, and minted
by one exchange however many requests need it at that moment (a single-flight task per GitHub token).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import orjson

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._http import UpstreamHttp
from apipod.adapters.upstreams._single_flight import TokenCache
from apipod.application.ports import Clock
from apipod.dialects import openai
from apipod.domain.catalog import Upstream
from apipod.domain.errors import UpstreamAuthError, UpstreamError, UpstreamUnavailableError

log = logging.getLogger("apipod.upstream.copilot")

DEFAULT_TOKEN_URL = "https://api.github.com/copilot_internal/v2/token"  # noqa: S105 (a URL, not a secret)
DEFAULT_API_BASE = "https://api.githubcopilot.com"
# Editor identity headers (docs/protocols/copilot.md §3, §5.1). They drift with editor releases: every one is an option.
DEFAULT_EDITOR_VERSION = "vscode/1.104.3"
DEFAULT_EDITOR_PLUGIN_VERSION = "copilot-chat/0.26.7"
DEFAULT_USER_AGENT = "GitHubCopilotChat/0.26.7"
DEFAULT_INTEGRATION_ID = "vscode-chat"
GITHUB_API_VERSION = "2025-04-01"

REFRESH_MARGIN = 300.0  # refresh when fewer than five minutes are left (docs/protocols/copilot.md §3, refresh policy)
_FALLBACK_LIFETIME = 1500.0  # a token response without usable expiry data: assume the usual 25 minutes
_COPILOT_DOMAIN = "githubcopilot.com"


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
    outside Copilot's domain is never trusted (docs/protocols/copilot.md §3).
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
        self._tokens: TokenCache[tuple[str, str], CopilotToken] = TokenCache(clock, log, "Copilot token")

    async def get(self, upstream: Upstream, github_token: str) -> CopilotToken:
        """The account's current Copilot token, minted or refreshed when due.

        Raises:
            UpstreamAuthError: GitHub refused the token (revoked, no Copilot seat).
            UpstreamError: GitHub was unreachable, rate limited or failing, and no still-valid token is cached.
        """
        key = _key(upstream, github_token)
        return await self._tokens.get(key, upstream.name, functools.partial(self._mint, upstream, key))

    def invalidate(self, upstream: Upstream, github_token: str, token: CopilotToken) -> None:
        """Drop ``token`` (the chat API refused it). A newer token already cached is kept."""
        self._tokens.invalidate(_key(upstream, github_token), token)

    async def _mint(self, upstream: Upstream, key: tuple[str, str]) -> CopilotToken:
        url, github_token = key
        headers = {"authorization": f"token {github_token}", "accept": "application/json"}
        headers.update(editor_headers(upstream.options))
        answer = await self._http.request_json(upstream, "GET", url, headers=headers)
        return self._parse(upstream, answer)

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


def _key(upstream: Upstream, github_token: str) -> tuple[str, str]:
    return str(upstream.options.get("token_url") or DEFAULT_TOKEN_URL), github_token


def exchange_error(status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """The token exchange's refusals are the account's fault, never the chat client's. GitHub's own text
    rides in ``detail``: the HTTP layer logs it with the credentials cut out (it may echo the GitHub token)."""
    detail = _detail(body)
    if status == 401:
        return UpstreamAuthError(
            "GitHub rejected the account's GitHub token (HTTP 401): it is invalid or revoked; "
            "run `apipod copilot login` again.",
            detail=detail,
        )
    if status in (403, 404):
        return UpstreamAuthError(
            f"GitHub refused to issue a Copilot token (HTTP {status}): the GitHub account has no "
            "Copilot access or its subscription lapsed.",
            detail=detail,
        )
    if status == 429 or status >= 500:
        return openai.decode_error(status, body, headers)
    return UpstreamAuthError(f"GitHub refused to issue a Copilot token (HTTP {status}).", detail=detail)


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
