"""Antigravity: Google's Cloud Code Assist API (``v1internal``), serving Gemini and Claude models under a
Google account's quota (docs/protocols/antigravity.md).

Each account is a Google refresh token (``antigravity_auth``); its Cloud project comes from the
configuration or from ``loadCodeAssist`` (onboarding the account when it has none) and is cached. Requests
are Gemini bodies in the Cloud Code envelope (``antigravity_wire``); 429s are classified into rate limit,
exhausted quota and missing capacity (``antigravity_errors``) so the dispatcher rests the account for as
long as the upstream says while the other accounts serve. Hosts are tried in order on connection errors,
404 and 5xx before the first byte; a 401 drops the access token, refreshes it once and tries again.
"""

from __future__ import annotations

import logging
import platform
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import httpx

from apipod.adapters.retry import DEFAULT_RETRY, RetryPolicy
from apipod.adapters.upstreams._batched import BatchedStream
from apipod.adapters.upstreams._http import UpstreamHttp
from apipod.adapters.upstreams.antigravity_auth import AccessToken, GoogleTokens
from apipod.adapters.upstreams.antigravity_errors import AccessTokenRejectedError, error_decoder
from apipod.adapters.upstreams.antigravity_project import ProjectDirectory
from apipod.adapters.upstreams.antigravity_wire import (
    CLAUDE_THINKING_BETA,
    EnvelopeDecoder,
    build_body,
    envelope,
    is_claude_thinking,
    tool_names,
    unwrap,
)
from apipod.application.ports import Clock, UpstreamCall, UpstreamClient
from apipod.dialects import gemini
from apipod.domain.catalog import Account, Upstream, UpstreamKind
from apipod.domain.chat import ChatRequest, ChatResult
from apipod.domain.errors import (
    UpstreamOverloadedError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from apipod.domain.stream import StreamEvent

T = TypeVar("T")

log = logging.getLogger("apipod.upstream.antigravity")

PROD_HOST = "https://cloudcode-pa.googleapis.com"
DAILY_HOST = "https://daily-cloudcode-pa.googleapis.com"
DEFAULT_HOSTS = (DAILY_HOST, PROD_HOST)  # §1: "default daily, prod"
CLIENT_VERSION = "1.15.8"  # the version in the reference's User-Agent example; the backend gates models on it
# Internal ids fetchAvailableModels lists next to the real models (chat_20706, tab_flash_lite_preview...).
_INTERNAL_MODEL = re.compile(r"^(?:chat_\d+|tab_.*)$")
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def default_user_agent() -> str:
    """``antigravity/<version> <os>/<arch>``, naming this host's real OS and architecture."""
    system = platform.system().lower() or "linux"
    machine = platform.machine().lower()
    return f"antigravity/{CLIENT_VERSION} {system}/{_ARCH.get(machine, machine or 'amd64')}"


class AntigravityUpstream(UpstreamClient):
    """Talks to Cloud Code with Google accounts.

    Options (``upstream.options``): ``oauth_client_id`` and ``oauth_client_secret`` (required, no defaults),
    ``oauth_token_url``, ``base_urls`` (hosts tried in order; ``upstream.base_url`` comes first when set),
    ``user_agent``. ``upstream.headers`` are added last and override the defaults.

    Args:
        client: the shared HTTP client.
        clock: times token expiry and reads quota reset timestamps.
        retry: connection retries (``RetryPolicy.disabled()`` in tests that count attempts).
        onboard_poll_interval: seconds between two ``onboardUser`` polls (§4: every 2-5 s).
        onboard_polls: how many times to ask before giving up.
    """

    kind = UpstreamKind.ANTIGRAVITY

    def __init__(
        self,
        client: httpx.AsyncClient,
        clock: Clock,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        onboard_poll_interval: float = 3.0,
        onboard_polls: int = 10,
    ) -> None:
        self._clock = clock
        self._http = UpstreamHttp(client, decode_error=error_decoder(clock.now), retry=retry)
        self._tokens = GoogleTokens(client, clock, retry=retry)
        self._projects = ProjectDirectory(poll_interval=onboard_poll_interval, polls=onboard_polls)
        self._user_agent = default_user_agent()

    async def complete(self, call: UpstreamCall, request: ChatRequest) -> ChatResult:
        model = call.model.upstream_model
        body = build_body(request, model=model, stream=False)
        names = tool_names(request, model)

        async def attempt(host: str, token: AccessToken, project: str) -> ChatResult:
            answer = await self._http.request_json(
                call.upstream,
                "POST",
                f"{host}/v1internal:generateContent",
                headers=self._headers(call.upstream, token, model=model),
                body=self._envelope(body, model, project),
            )
            inner = unwrap(answer)
            if not isinstance(inner, Mapping):
                raise UpstreamUnavailableError(
                    "The upstream's answer is not a JSON object.", upstream=call.upstream.name
                )
            result = gemini.decode_response(inner, names=names)
            return result if result.model else attrs.evolve(result, model=model)

        return await self._generate(call, attempt)

    def stream(self, call: UpstreamCall, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        return BatchedStream(self._batches(call, request))

    async def _batches(self, call: UpstreamCall, request: ChatRequest) -> AsyncGenerator[Sequence[StreamEvent], None]:
        model = call.model.upstream_model
        body = build_body(request, model=model, stream=True)
        names = tool_names(request, model)

        async def attempt(host: str, token: AccessToken, project: str) -> tuple[BatchedStream, Sequence[StreamEvent]]:
            events = self._http.stream(
                call.upstream,
                f"{host}/v1internal:streamGenerateContent?alt=sse",
                headers=self._headers(call.upstream, token, model=model, stream=True),
                body=self._envelope(body, model, project),
                decoder=EnvelopeDecoder(gemini.StreamDecoder(names=names)),
            )
            try:
                return events, await anext(events.batches())
            except StopAsyncIteration:
                raise UpstreamUnavailableError("The upstream sent no answer.", upstream=call.upstream.name) from None
            except BaseException:
                await events.aclose()
                raise

        # NOTE: hosts and the token refresh are tried only until the first event; after it, nothing is retried.
        events, first = await self._generate(call, attempt)
        try:
            yield first
            async for batch in events.batches():
                yield batch
        finally:
            await events.aclose()

    async def list_models(self, upstream: Upstream) -> list[str]:
        """``fetchAvailableModels`` with the pool's first account, without the internal ids."""
        if not upstream.accounts:
            return []
        account = upstream.accounts[0]
        project = self._projects.known(upstream, account)

        async def fetch(token: AccessToken) -> Any:
            return await self._over_hosts(
                upstream,
                lambda host: self._http.request_json(
                    upstream,
                    "POST",
                    f"{host}/v1internal:fetchAvailableModels",
                    headers=self._headers(upstream, token),
                    body={"project": project} if project else {},
                ),
            )

        answer = await self._authorised(upstream, account, fetch)
        models = answer.get("models") if isinstance(answer, Mapping) else None
        if isinstance(models, Mapping):
            ids = [str(k) for k in models]
        elif isinstance(models, list):  # tolerate an array of model objects
            ids = [str(m.get("id") or m.get("name") or "") for m in models if isinstance(m, Mapping)]
        else:
            ids = []
        return [i for i in ids if i and not _INTERNAL_MODEL.match(i)]

    # -- one generation: token, project, hosts --------------------------------------------------------
    async def _generate(self, call: UpstreamCall, attempt: Callable[[str, AccessToken, str], Awaitable[T]]) -> T:
        upstream, account = call.upstream, call.account

        async def with_token(token: AccessToken) -> T:
            project = await self._project(upstream, account, token)
            return await self._over_hosts(upstream, lambda host: attempt(host, token, project))

        return await self._authorised(upstream, account, with_token)

    async def _authorised(self, upstream: Upstream, account: Account, fn: Callable[[AccessToken], Awaitable[T]]) -> T:
        """``fn(token)``; after a 401, once more with a freshly refreshed token."""
        token = await self._tokens.get(upstream, account)
        try:
            return await fn(token)
        except AccessTokenRejectedError:
            self._tokens.invalidate(upstream, account, token)
        return await fn(await self._tokens.get(upstream, account))

    async def _over_hosts(
        self, upstream: Upstream, fn: Callable[[str], Awaitable[T]], hosts: Sequence[str] | None = None
    ) -> T:
        """``fn(host)`` on each host in turn while the failure is the host's (connection, 404, 5xx).
        429s are not the host's: they go straight to the dispatcher, which rotates accounts (§1)."""
        hosts = hosts or self._hosts(upstream)
        last = len(hosts) - 1
        for index, host in enumerate(hosts):
            try:
                return await fn(host)
            except (UpstreamUnavailableError, UpstreamOverloadedError) as exc:
                if index == last:
                    raise
                log.info("upstream %s: host %d failed (%s); trying the next", upstream.name, index, type(exc).__name__)
            except UpstreamRejectedError as exc:
                if exc.status != 404 or index == last:
                    raise
                log.info("upstream %s: host %d answered 404; trying the next", upstream.name, index)
        raise UpstreamUnavailableError("The upstream has no hosts configured.", upstream=upstream.name)

    def _hosts(self, upstream: Upstream) -> list[str]:
        configured = upstream.options.get("base_urls")
        if isinstance(configured, str):
            configured = [configured]
        hosts = [upstream.base_url] if upstream.base_url else []
        hosts += [h for h in configured or () if isinstance(h, str) and h]
        hosts = list(dict.fromkeys(h.rstrip("/") for h in hosts))
        return hosts or list(DEFAULT_HOSTS)

    def _headers(
        self, upstream: Upstream, token: AccessToken, *, model: str = "", stream: bool = False
    ) -> dict[str, str]:
        headers = {
            "authorization": f"Bearer {token.value}",
            "user-agent": str(upstream.options.get("user_agent") or self._user_agent),
        }
        if stream:
            headers["accept"] = "text/event-stream"
        if is_claude_thinking(model):
            headers["anthropic-beta"] = CLAUDE_THINKING_BETA
        headers.update(upstream.headers)
        return headers

    def _envelope(self, body: dict[str, Any], model: str, project: str) -> dict[str, Any]:
        return envelope(body, model=model, project=project, now_ms=int(self._clock.now().timestamp() * 1000))

    # -- the account's Cloud project (§4) -------------------------------------------------------------
    async def _project(self, upstream: Upstream, account: Account, token: AccessToken) -> str:
        known = self._projects.known(upstream, account)
        if known is not None:
            return known
        # The production host answers loadCodeAssist most reliably (§1): it goes first.
        hosts = sorted(self._hosts(upstream), key=lambda h: h != PROD_HOST)
        headers = self._headers(upstream, token)

        async def send(method: str, body: dict[str, Any]) -> Any:
            return await self._over_hosts(
                upstream,
                lambda host: self._http.request_json(
                    upstream, "POST", f"{host}/v1internal:{method}", headers=headers, body=body
                ),
                hosts,
            )

        return await self._projects.get(upstream, account, send)
