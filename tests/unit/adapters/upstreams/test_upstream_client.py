"""``make_http_client``'s client: its short ``send`` answers as httpx's own, and gives way to it whenever auth,
hooks, redirects, a proxy mount or a closed client are in play."""

from __future__ import annotations

import base64

import httpx
import pytest

from apipod.adapters.upstreams._http import _UpstreamClient, body_chunks

URL = "http://upstream.test/v1/chat/completions"


def answering(seen: list[httpx.Request], *, status: int = 200, tag: str = "pool") -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"location": "http://upstream.test/elsewhere"} if 300 <= status < 400 else {}
        return httpx.Response(status, headers={"x-transport": tag, **headers}, content=b'{"ok": true}')

    return httpx.MockTransport(handler)


async def read(response: httpx.Response) -> bytes:
    return b"".join([chunk async for chunk in body_chunks(response)])


async def test_the_short_send_answers_as_httpx_does() -> None:
    seen: list[httpx.Request] = []
    async with (
        _UpstreamClient(transport=answering(seen)) as ours,
        httpx.AsyncClient(transport=answering(seen)) as theirs,
    ):
        for client in (ours, theirs):
            request = client.build_request("POST", URL, content=b"{}", headers={"authorization": "Bearer k"})
            response = await client.send(request, stream=True)
            assert response.request is request
            assert response.status_code == 200
            assert response.headers["x-transport"] == "pool"
            assert await read(response) == b'{"ok": true}'
            await response.aclose()
    assert [r.headers["authorization"] for r in seen] == ["Bearer k", "Bearer k"]


async def test_a_redirect_is_answered_not_followed() -> None:
    seen: list[httpx.Request] = []
    async with _UpstreamClient(transport=answering(seen, status=307)) as client:
        response = await client.send(client.build_request("POST", URL, content=b"{}"), stream=True)
        assert response.status_code == 307
        await response.aclose()
    assert len(seen) == 1


async def test_a_transport_failure_carries_its_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    async with _UpstreamClient(transport=httpx.MockTransport(refuse)) as client:
        request = client.build_request("POST", URL, content=b"{}")
        with pytest.raises(httpx.ConnectError) as caught:
            await client.send(request, stream=True)
    assert caught.value.request is request


async def test_a_mounted_transport_is_used_as_httpx_picks_it() -> None:
    pool: list[httpx.Request] = []
    mounted: list[httpx.Request] = []
    mounts = {"http://upstream.test": answering(mounted, tag="mount")}
    async with _UpstreamClient(transport=answering(pool), mounts=mounts) as client:
        response = await client.send(client.build_request("POST", URL, content=b"{}"), stream=True)
        assert response.headers["x-transport"] == "mount"
        await response.aclose()
    assert len(mounted) == 1
    assert not pool


async def test_hooks_auth_and_a_user_in_the_url_go_httpxs_way() -> None:
    seen: list[httpx.Request] = []
    hooked: list[str] = []

    async def on_request(request: httpx.Request) -> None:
        hooked.append("request")

    async def on_response(response: httpx.Response) -> None:
        hooked.append("response")

    async with _UpstreamClient(
        transport=answering(seen), event_hooks={"request": [on_request], "response": [on_response]}
    ) as client:
        response = await client.send(client.build_request("POST", URL, content=b"{}"), stream=True)
        await response.aclose()
    assert hooked == ["request", "response"]

    async with _UpstreamClient(transport=answering(seen), auth=("client", "secret")) as client:
        response = await client.send(client.build_request("POST", URL, content=b"{}"), stream=True)
        await response.aclose()
    async with _UpstreamClient(transport=answering(seen)) as client:
        request = client.build_request("POST", "http://user:pw@upstream.test/v1", content=b"{}")
        response = await client.send(request, stream=True)
        await response.aclose()
    assert seen[-2].headers["authorization"] == "Basic " + base64.b64encode(b"client:secret").decode()
    assert seen[-1].headers["authorization"] == "Basic " + base64.b64encode(b"user:pw").decode()


async def test_a_send_that_reads_the_body_goes_httpxs_way() -> None:
    async with _UpstreamClient(transport=answering([])) as client:
        response = await client.send(client.build_request("POST", URL, content=b"{}"))
        assert response.content == b'{"ok": true}'


async def test_a_closed_client_refuses_to_send() -> None:
    client = _UpstreamClient(transport=answering([]))
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await client.send(client.build_request("POST", URL, content=b"{}"), stream=True)
