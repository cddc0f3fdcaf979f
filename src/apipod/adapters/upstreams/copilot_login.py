"""GitHub's OAuth device flow for Copilot accounts (docs/protocols/copilot.md §2): the operator approves apipod in a
browser, and the resulting GitHub token becomes an account of a copilot upstream.

The GitHub token is long-lived; ``CopilotUpstream`` trades it for short-lived Copilot tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
import orjson

from apipod.domain.errors import UpstreamAuthError, UpstreamUnavailableError

# NOTE: the public client id of GitHub's VS Code Copilot OAuth app, shipped in the editor extension and used by
# every working Copilot client (docs/protocols/copilot.md §2.1). Not a secret; the upstream option ``client_id``
# overrides it.
DEFAULT_CLIENT_ID = "Iv1.b507a08c87ecfe98"
DEFAULT_GITHUB_BASE_URL = "https://github.com"
SCOPE = "read:user"

_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
_HEADERS = {"accept": "application/json", "content-type": "application/json"}
_SLOW_DOWN_STEP = 5.0  # RFC 8628 §3.5: add five seconds when told to slow down
_DEFAULT_INTERVAL = 5.0
_DEFAULT_EXPIRES_IN = 900.0
_MESSAGES = {
    "expired_token": "The device code expired before it was approved. Run the login again.",
    "access_denied": "The login was cancelled on GitHub.",
}


class DeviceFlowError(UpstreamAuthError):
    """The device flow ended without a token: expired, cancelled or misconfigured. ``code`` is GitHub's
    ``error`` value when it gave one."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message, upstream="github")
        self.code = code


async def login_copilot(
    client: httpx.AsyncClient,
    *,
    github_base_url: str = DEFAULT_GITHUB_BASE_URL,
    client_id: str = DEFAULT_CLIENT_ID,
    show: Callable[[str], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> str:
    """Runs the device flow and returns the GitHub token.

    ``show`` receives the text the operator must act on (the URL and the user code). Polling waits
    ``interval`` seconds between tries, longer after ``slow_down``, and gives up after ``expires_in``.

    Raises:
        DeviceFlowError: expired code, cancelled by the user, or a configuration error GitHub reported.
        UpstreamUnavailableError: GitHub could not be reached or answered something unreadable.
    """
    base = github_base_url.rstrip("/")
    code = await _post(client, f"{base}/login/device/code", {"client_id": client_id, "scope": SCOPE})
    device_code = code.get("device_code")
    user_code = code.get("user_code")
    if not isinstance(device_code, str) or not isinstance(user_code, str):
        raise DeviceFlowError(f"GitHub did not issue a device code: {_describe(code)}", code=_text(code.get("error")))
    uri = code.get("verification_uri") or f"{base}/login/device"
    show(f"Open {uri} and enter the code {user_code}")
    interval = _seconds(code.get("interval"), _DEFAULT_INTERVAL)
    remaining = _seconds(code.get("expires_in"), _DEFAULT_EXPIRES_IN)
    poll = {"client_id": client_id, "device_code": device_code, "grant_type": _GRANT_TYPE}
    while remaining > 0:
        await sleep(interval)
        remaining -= interval
        answer = await _post(client, f"{base}/login/oauth/access_token", poll)
        token = answer.get("access_token")
        if isinstance(token, str) and token:
            return token
        error = _text(answer.get("error"))
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = _seconds(answer.get("interval"), interval + _SLOW_DOWN_STEP)
            continue
        message = _MESSAGES.get(error) or f"GitHub refused the device login: {_describe(answer)}"
        raise DeviceFlowError(message, code=error)
    raise DeviceFlowError(_MESSAGES["expired_token"], code="expired_token")


async def _post(client: httpx.AsyncClient, url: str, body: Mapping[str, str]) -> dict[str, Any]:
    """GitHub answers 200 for pending and error states alike; a non-JSON or non-object answer is a failure."""
    try:
        response = await client.post(url, headers=_HEADERS, content=orjson.dumps(body))
    except httpx.HTTPError as exc:
        raise UpstreamUnavailableError(
            f"apipod could not reach GitHub ({type(exc).__name__}).", upstream="github"
        ) from exc
    try:
        payload = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        raise UpstreamUnavailableError(
            f"GitHub answered HTTP {response.status_code} without a JSON object.", upstream="github"
        )
    if response.status_code >= 400 and "error" not in payload:
        raise DeviceFlowError(f"GitHub answered HTTP {response.status_code}: {_describe(payload)}")
    return payload


def _seconds(value: object, default: float) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return default


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _describe(payload: Mapping[str, Any]) -> str:
    error = _text(payload.get("error")) or "no error code"
    detail = _text(payload.get("error_description")) or _text(payload.get("message"))
    return f"{error} ({detail})" if detail else error
