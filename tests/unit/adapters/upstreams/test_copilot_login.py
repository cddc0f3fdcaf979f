"""The GitHub device flow (``login_copilot``) against the fake GitHub, polling without real waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from apipod.adapters.upstreams.copilot_login import DEFAULT_CLIENT_ID, DeviceFlowError, login_copilot
from apipod.domain.errors import UpstreamUnavailableError
from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_copilot import FakeCopilot, poll_bodies

SUCCESS_TOKEN = "ghu_EXAMPLEexampleEXAMPLEexample0000000"  # device_poll_responses.json
GITHUB = "https://github.com"


class Sleeps:
    """Records the waits instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake() -> FakeCopilot:
    return FakeCopilot()


@pytest.fixture
async def client(fake: FakeCopilot) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        yield http


async def run(client: httpx.AsyncClient, sleeps: Sleeps, shown: list[str], **kwargs: Any) -> str:
    return await login_copilot(client, github_base_url=GITHUB, show=shown.append, sleep=sleeps, **kwargs)


async def test_the_happy_path_honours_interval_and_slow_down(client: httpx.AsyncClient, fake: FakeCopilot) -> None:
    sleeps, shown = Sleeps(), list[str]()

    token = await run(client, sleeps, shown, client_id=DEFAULT_CLIENT_ID)

    assert token == SUCCESS_TOKEN
    assert shown == ["Open https://github.com/login/device and enter the code WDJB-MJHT"]
    assert sleeps.waits == [5.0, 5.0, 10.0]  # interval 5; slow_down answered interval 10
    device, *polls = fake.requests
    assert device.path == "/login/device/code"
    assert device.headers["accept"] == "application/json"
    assert device.body == {"client_id": "Iv1.b507a08c87ecfe98", "scope": "read:user"}
    assert [p.path for p in polls] == ["/login/oauth/access_token"] * 3
    assert polls[0].body == {
        "client_id": "Iv1.b507a08c87ecfe98",
        "device_code": "3584d83530557fdd1f46af8289938c8ef79f9dc5",
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
    }
    assert SUCCESS_TOKEN in fake.github_tokens  # the token the exchange will accept


async def test_slow_down_without_an_interval_adds_five_seconds(client: httpx.AsyncClient, fake: FakeCopilot) -> None:
    slow = {k: v for k, v in poll_bodies("slow_down")[0].items() if k != "interval"}
    fake.polls.clear()
    fake.polls.extend([slow, *poll_bodies("authorization_pending", "success")])
    sleeps = Sleeps()
    assert await run(client, sleeps, [], client_id="Iv1.custom") == SUCCESS_TOKEN
    assert sleeps.waits == [5.0, 10.0, 10.0]
    assert fake.requests[0].body["client_id"] == "Iv1.custom"


async def test_an_expired_device_code_stops_the_flow(client: httpx.AsyncClient, fake: FakeCopilot) -> None:
    fake.polls.clear()
    fake.polls.extend(poll_bodies("authorization_pending", "expired_token", "success"))
    with pytest.raises(DeviceFlowError, match="expired") as caught:
        await run(client, Sleeps(), [])
    assert caught.value.code == "expired_token"
    assert len(fake.polls) == 1  # never polled again after the expiry


async def test_a_denied_login_stops_the_flow(client: httpx.AsyncClient, fake: FakeCopilot) -> None:
    fake.polls.clear()
    fake.polls.append({"error": "access_denied", "error_description": "The authorization request was denied."})
    with pytest.raises(DeviceFlowError, match="cancelled") as caught:
        await run(client, Sleeps(), [])
    assert caught.value.code == "access_denied"


@pytest.mark.parametrize("error", ["incorrect_client_credentials", "device_flow_disabled", "unsupported_grant_type"])
async def test_a_configuration_error_stops_the_flow_naming_it(
    client: httpx.AsyncClient, fake: FakeCopilot, error: str
) -> None:
    fake.polls.clear()
    fake.polls.append({"error": error, "error_description": "Nope."})
    with pytest.raises(DeviceFlowError, match=f"{error} \\(Nope.\\)") as caught:
        await run(client, Sleeps(), [])
    assert caught.value.code == error


async def test_polling_gives_up_when_the_code_lifetime_has_passed(client: httpx.AsyncClient, fake: FakeCopilot) -> None:
    fake.polls.clear()  # pending forever
    sleeps = Sleeps()
    with pytest.raises(DeviceFlowError, match="expired"):
        await run(client, sleeps, [])
    assert sum(sleeps.waits) >= 899  # expires_in of device_code_response.json
    assert len(sleeps.waits) == 180


async def test_github_unreachable_or_unreadable_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        with pytest.raises(UpstreamUnavailableError, match="could not reach GitHub"):
            await run(http, Sleeps(), [])
    html = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>login</html>"))
    async with httpx.AsyncClient(transport=html) as http:
        with pytest.raises(UpstreamUnavailableError, match="without a JSON object"):
            await run(http, Sleeps(), [])
