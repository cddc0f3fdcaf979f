"""Google OAuth access tokens for Antigravity accounts (docs/protocols/antigravity.md §3).

An account is a Google refresh token. The access token minted from it is cached, refreshed lazily five
minutes before it expires, and minted by one refresh however many requests need it at that moment (a
single-flight task per refresh token). The OAuth client id and secret are the operator's configuration
(``oauth_client_id`` / ``oauth_client_secret``): apipod ships no credentials of its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

import attrs
import httpx
import orjson

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._http import CONNECT_ERRORS, http_timeout, transport_error
from apipod.adapters.upstreams._single_flight import TokenCache
from apipod.application.ports import Clock
from apipod.domain.catalog import Account, Upstream
from apipod.domain.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamUnavailableError,
)

log = logging.getLogger("apipod.upstream.antigravity")

DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
REFRESH_MARGIN = 300.0  # refresh when fewer than five minutes of life remain (§3 policy)
_DEFAULT_LIFETIME = 3599.0  # Google's usual ``expires_in`` when an answer omits it

_Key = tuple[str, str, str]  # (token URL, client id, refresh token)


@attrs.frozen
class AccessToken:
    """A minted access token; ``refresh_at`` and ``expires_at`` are on the clock's monotonic scale."""

    value: str = attrs.field(repr=False)
    refresh_at: float
    expires_at: float


def required_option(upstream: Upstream, name: str) -> str:
    """A configuration value the adapter cannot work without: a missing one is the account's fault (it fails
    over), with a message naming the option."""
    value = upstream.options.get(name)
    if not isinstance(value, str) or not value:
        raise UpstreamAuthError(
            f"The antigravity upstream '{upstream.name}' needs the option '{name}' (the Antigravity OAuth "
            "client's credentials) to refresh its accounts' tokens.",
            upstream=upstream.name,
        )
    return value


class GoogleTokens:
    """The access-token cache, keyed by (token URL, client id, refresh token).

    Args:
        client: the shared HTTP client.
        clock: ``monotonic()`` times expiry.
        margin: seconds before expiry at which a token is refreshed.
        retry: connection retries for the token endpoint.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        *,
        margin: float = REFRESH_MARGIN,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._client = client
        self._clock = clock
        self._margin = margin
        self._retry = retry
        self._tokens: TokenCache[_Key, AccessToken] = TokenCache(clock, log, "token")

    async def get(self, upstream: Upstream, account: Account) -> AccessToken:
        """The account's access token, refreshed when due.

        Raises:
            UpstreamAuthError: an option is missing, the refresh token is expired or revoked, or the client
                credentials are wrong.
            UpstreamError: the token endpoint was unreachable, rate limiting or failing.
        """
        key = self._key(upstream, account)
        return await self._tokens.get(key, upstream.name, functools.partial(self._mint, upstream, key))

    def invalidate(self, upstream: Upstream, account: Account, token: AccessToken) -> None:
        """Drop ``token`` (Cloud Code refused it). A newer token already cached is kept."""
        self._tokens.invalidate(self._key(upstream, account), token)

    def _key(self, upstream: Upstream, account: Account) -> _Key:
        url = str(upstream.options.get("oauth_token_url") or DEFAULT_TOKEN_URL)
        return url, str(upstream.options.get("oauth_client_id") or ""), account.secret

    async def _mint(self, upstream: Upstream, key: _Key) -> AccessToken:
        url, _, refresh_token = key
        form = {
            "client_id": required_option(upstream, "oauth_client_id"),
            "client_secret": required_option(upstream, "oauth_client_secret"),
            "refresh_token": refresh_token,
            "grant_type": "refresh_token",
        }
        started = self._clock.monotonic()
        try:
            response = await self._retry.call(
                lambda: self._client.post(
                    url, data=form, headers={"accept": "application/json"}, timeout=http_timeout(upstream.timeouts)
                ),
                retry_on=CONNECT_ERRORS,
            )
        except httpx.HTTPError as exc:
            raise transport_error(upstream, exc) from exc
        if response.status_code != 200:
            raise _refresh_error(upstream, response)
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        value = answer.get("access_token") if isinstance(answer, Mapping) else None
        if not isinstance(value, str) or not value or not isinstance(answer, Mapping):
            raise UpstreamUnavailableError("Google's token answer holds no access token.", upstream=upstream.name)
        lifetime = answer.get("expires_in")
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = _DEFAULT_LIFETIME
        refresh_after = max(lifetime - self._margin, lifetime / 2)  # short-lived tokens: at half-life
        return AccessToken(value=value, refresh_at=started + refresh_after, expires_at=started + lifetime)


def _refresh_error(upstream: Upstream, response: httpx.Response) -> UpstreamError:
    status = response.status_code
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        answer = None
    code = answer.get("error") if isinstance(answer, Mapping) else None
    code = code if isinstance(code, str) else ""
    log.info("upstream %s: token refresh answered HTTP %d %s", upstream.name, status, code)
    if code == "invalid_grant":
        return UpstreamAuthError(
            "Google refused the account's refresh token (invalid_grant): it expired or was revoked; "
            "authorise the account again.",
            upstream=upstream.name,
        )
    if code in ("invalid_client", "unauthorized_client"):
        return UpstreamAuthError(
            f"Google refused the OAuth client ({code}): check oauth_client_id and oauth_client_secret.",
            upstream=upstream.name,
        )
    if status == 429:
        return UpstreamRateLimitedError("Google's token endpoint is rate limiting.", upstream=upstream.name)
    if status >= 500:
        return UpstreamUnavailableError(f"Google's token endpoint failed (HTTP {status}).", upstream=upstream.name)
    return UpstreamAuthError(f"Google refused to refresh the access token (HTTP {status}).", upstream=upstream.name)
