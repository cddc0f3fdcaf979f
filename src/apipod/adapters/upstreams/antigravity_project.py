"""Each Antigravity account's Cloud project (docs/protocols/antigravity.md §4).

Every generation names a project. An account configured with one (``projects`` in the catalog) uses it;
otherwise ``loadCodeAssist`` says which, and an account that has none yet is onboarded with ``onboardUser``
(a long-running operation, polled until done). The answer is cached per account and discovered once
however many requests need it at that moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from apipod.adapters.upstreams._single_flight import SingleFlight
from apipod.domain.catalog import Account, Upstream
from apipod.domain.errors import UpstreamAuthError

METADATA = {"ideType": "ANTIGRAVITY", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"}

Send = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""``send(method, body)``: POST ``/v1internal:<method>`` as the account, answering the parsed JSON."""

_Key = tuple[str, str]  # (upstream name, refresh token)


class ProjectDirectory:
    """Discovered projects by account.

    Args:
        poll_interval: seconds between two ``onboardUser`` polls (§4: every 2-5 s).
        polls: how many times to ask before giving up.
    """

    def __init__(self, *, poll_interval: float = 3.0, polls: int = 10) -> None:
        self._poll_interval = poll_interval
        self._polls = polls
        self._known: dict[_Key, str] = {}
        self._flight: SingleFlight[_Key, str] = SingleFlight()

    def known(self, upstream: Upstream, account: Account) -> str | None:
        """The configured or already discovered project, without asking Cloud Code."""
        return account.project or self._known.get((upstream.name, account.secret))

    async def get(self, upstream: Upstream, account: Account, send: Send) -> str:
        """The account's project. Raises UpstreamAuthError when Cloud Code gives it none."""
        project = self.known(upstream, account)
        if project is not None:
            return project
        key = (upstream.name, account.secret)
        return await self._flight.run(key, lambda: self._discover(upstream, key, send))

    async def _discover(self, upstream: Upstream, key: _Key, send: Send) -> str:
        answer = await send("loadCodeAssist", {"metadata": METADATA})
        project = _project_id(answer)
        if project is None:
            body = {"tierId": _default_tier(answer), "metadata": METADATA}
            for poll in range(self._polls):
                if poll:
                    await asyncio.sleep(self._poll_interval)
                operation = await send("onboardUser", body)
                if isinstance(operation, Mapping) and operation.get("done"):
                    project = _project_id(operation.get("response"))
                    break
        if project is None:
            raise UpstreamAuthError(
                "Cloud Code gave the Google account no project (loadCodeAssist, onboardUser); "
                "set the account's project in the upstream's 'projects'.",
                upstream=upstream.name,
            )
        self._known[key] = project
        return project


def _project_id(answer: Any) -> str | None:
    """``cloudaicompanionProject`` is a string or ``{"id": ...}``."""
    value = answer.get("cloudaicompanionProject") if isinstance(answer, Mapping) else None
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _default_tier(answer: Any) -> str:
    tiers = answer.get("allowedTiers") if isinstance(answer, Mapping) else None
    for tier in tiers if isinstance(tiers, list) else ():
        if isinstance(tier, Mapping) and tier.get("isDefault") and isinstance(tier.get("id"), str):
            return str(tier["id"])
    return "free-tier"
