"""Planted secrets never leak: not into the log (at DEBUG), not into any answer's body or headers, not into
the admin API's views, not into ``repr()``/``str()`` of the objects that hold them.

One gateway over four fake providers (OpenAI, Anthropic, Antigravity, Copilot), each configured with a
recognisable credential, is driven through every path: answers and streams in both client dialects,
token counting, upstream 401/429/500 answers (whose bodies echo the credential, as careless upstreams do),
bad client keys, a revoked key, bad admin secrets, and every admin read. Then everything the gateway said
is searched for every planted value.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from apipod.application.authenticate_key import Principal
from apipod.application.ports.upstream import UpstreamCall
from apipod.bootstrap.settings import Settings
from apipod.domain.catalog import Account, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.errors import UpstreamAuthError
from apipod.domain.keys import ApiKey, IssuedKey
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_antigravity import CLIENT_ID, FakeAntigravity
from tests.fakes.fake_copilot import TOKEN_PATH, FakeCopilot
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.scripted import Reply
from tests.fakes.server import serve
from tests.integration.harness import ApipodProcess, catalog, model, plan, provider

ADMIN_SECRET = "adm-PLANTED-admin-secret-0123456789"
OPENAI_KEY = "sk-PLANTED-provider-0123456789"
ANTHROPIC_KEY = "sk-ant-PLANTED-provider-9876543210"
REFRESH_TOKEN = "1//PLANTED-refresh-token"
OAUTH_CLIENT_SECRET = "GOCSPX-PLANTED-oauth-client-secret"
GITHUB_TOKEN = "ghu_PLANTED0123456789abcdefghijklmnop"
HEADER_VALUE = "hdr-PLANTED-custom-header-value-42"
PLANTED = (ADMIN_SECRET, OPENAI_KEY, ANTHROPIC_KEY, REFRESH_TOKEN, OAUTH_CLIENT_SECRET, GITHUB_TOKEN, HEADER_VALUE)

PLANS = ("oa", "an", "ag", "cp")
POOL = ("", "-b", "-c", "-d", "-e", "-f")  # per provider: a refused or limited account fails over to the next


def pool(secret: str) -> list[str]:
    return [secret + suffix for suffix in POOL]


@attrs.define
class Scan:
    """Everything the gateway said, to be searched at the end."""

    gateway: ApipodProcess
    fakes: dict[str, Any]
    keys: dict[str, str]  # plan -> a client key
    said: list[str] = attrs.field(factory=list)

    def record_issued(self, answer: httpx.Response) -> str:
        """A create-key answer: the one place the new key may appear (it is shown once, to its owner)."""
        key = str(answer.json()["api_key"])
        self.said.append(answer.text.replace(key, "<issued key>"))
        return key

    def record(self, answer: httpx.Response) -> httpx.Response:
        self.said.append(answer.text)
        self.said.extend(f"{name}: {value}" for name, value in answer.headers.items())
        return answer

    def secrets(self) -> list[str]:
        """The planted values, the client keys, and the upstream tokens the fakes minted along the way."""
        minted = list(self.fakes["cp"].issued) + list(getattr(self.fakes["ag"], "_access", {}))
        return [*PLANTED, *self.keys.values(), *minted]


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scan]:
    tmp: Path = tmp_path_factory.mktemp("secret-scan")
    fakes: dict[str, Any] = {
        "oa": FakeOpenAI(keys=pool(OPENAI_KEY)),
        "an": FakeAnthropic(keys=pool(ANTHROPIC_KEY)),
        "ag": FakeAntigravity(
            refresh_tokens=dict.fromkeys(pool(REFRESH_TOKEN), "planted-project"), client_secret=OAUTH_CLIENT_SECRET
        ),
        "cp": FakeCopilot(github_tokens=pool(GITHUB_TOKEN)),
    }
    with serve(fakes["oa"]) as oa, serve(fakes["an"]) as an, serve(fakes["ag"]) as ag, serve(fakes["cp"]) as cp:
        oauth = (
            f'oauth_token_url = "{ag}/token"\noauth_client_id = "{CLIENT_ID}"\n'
            f'oauth_client_secret = "{OAUTH_CLIENT_SECRET}"\n'
        )
        toml = catalog(
            provider(
                "oa",
                "openai",
                oa + "/v1",
                accounts=pool(OPENAI_KEY),
                extra=f'headers = {{ x-planted = "{HEADER_VALUE}" }}\n',
            ),
            provider("an", "anthropic", an, accounts=pool(ANTHROPIC_KEY)),
            provider("ag", "antigravity", ag, accounts=pool(REFRESH_TOKEN), extra=oauth),
            provider("cp", "copilot", cp, accounts=pool(GITHUB_TOKEN), extra=f'token_url = "{cp}{TOKEN_PATH}"\n'),
            models=[
                model("oa-model", "oa", "gpt-4o-mini"),
                model("an-model", "an", "claude-sonnet-4-5"),
                model("ag-model", "ag", "gemini-3-flash"),
                model("cp-model", "cp", "gpt-4.1"),
            ],
            plans=[plan(name, {f"{name}-model": 1}) for name in PLANS],
        )
        env = {"ADMIN_SECRET": ADMIN_SECRET, "LOG_LEVEL": "DEBUG", "QUEUE_WAIT_SECONDS": "1"}
        with ApipodProcess(catalog=toml, tmp=tmp, env=env, name="secret-scan") as gateway:
            admin = {"x-admin-secret": ADMIN_SECRET}
            keys = {}
            for name in PLANS:
                created = httpx.post(
                    f"{gateway.url}/admin/create-key", headers=admin, json={"name": f"scan-{name}", "tier": name}
                )
                assert created.status_code == 201, created.text
                keys[name] = created.json()["api_key"]
            yield Scan(gateway, fakes, keys)


# -- driving every path ----------------------------------------------------------------------------------------------

CHAT = {"messages": [{"role": "user", "content": "hello"}]}
MESSAGE = {"max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}


def _calls(scan: Scan, key: str) -> list[httpx.Response]:
    url, out = scan.gateway.url, []
    bearer = {"authorization": f"Bearer {key}"}
    anthropic = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.Client(timeout=30) as client:
        out.append(client.post(f"{url}/v1/chat/completions", headers=bearer, json={"model": "x", **CHAT}))
        with client.stream(
            "POST", f"{url}/v1/chat/completions", headers=bearer, json={"model": "x", "stream": True, **CHAT}
        ) as streamed:
            streamed.read()
            out.append(streamed)
        out.append(client.post(f"{url}/v1/messages", headers=anthropic, json={"model": "x", **MESSAGE}))
        with client.stream(
            "POST", f"{url}/v1/messages", headers=anthropic, json={"model": "x", "stream": True, **MESSAGE}
        ) as streamed:
            streamed.read()
            out.append(streamed)
        out.append(client.post(f"{url}/v1/messages/count_tokens", headers=anthropic, json={"model": "x", **CHAT}))
        out.append(client.get(f"{url}/v1/models", headers=bearer))
    return out


def _echoing_error(scan: Scan, name: str, status: int) -> None:
    """Queue one error answer whose text holds the account's credential, as some upstreams write it."""
    fake = scan.fakes[name]
    secret = {"oa": OPENAI_KEY, "an": ANTHROPIC_KEY, "ag": REFRESH_TOKEN, "cp": GITHUB_TOKEN}[name]
    text = f"Incorrect API key provided: {secret}."
    if name == "oa":  # an upstream can only echo what it was sent: oa alone is configured with the header
        text += f" Header x-planted: {HEADER_VALUE}."
    if name == "ag":
        fake.reply_error(status, {401: "UNAUTHENTICATED", 429: "RESOURCE_EXHAUSTED"}.get(status, "INTERNAL"), text)
    elif name == "cp":
        fake.reply_json({"error": {"message": text, "type": "error"}}, status=status)
    else:
        fake.reply_error(status, text)


@pytest.fixture(scope="module")
def driven(scan: Scan) -> Scan:
    """The gateway after every path was driven once (shared by the answer and the log checks)."""
    _drive(scan)
    return scan


def _drive(scan: Scan) -> None:
    url, admin = scan.gateway.url, {"x-admin-secret": ADMIN_SECRET}
    for name in PLANS:
        answers = [scan.record(a) for a in _calls(scan, scan.keys[name])]
        assert [a.status_code for a in answers[:5]] == [200] * 5, (name, [a.text[:300] for a in answers])
    # GitHub's token exchange refusing two accounts in a row, its text echoing the GitHub token: the Copilot
    # tokens minted so far expire, so the next chat call exchanges again (and fails over to the third account).
    copilot = scan.fakes["cp"]
    copilot.expire_tokens()
    for status in (401, 403):
        copilot.exchange_replies.append(Reply(status=status, body={"message": f"Bad credentials: {GITHUB_TOKEN}"}))
    scan.record(
        httpx.post(
            f"{url}/v1/chat/completions",
            headers={"authorization": f"Bearer {scan.keys['cp']}"},
            json={"model": "x", **CHAT},
            timeout=30,
        )
    )
    assert not copilot.exchange_replies, "the token exchange was not asked again"
    for name in PLANS:
        # One error per call, streamed and not: the account fails over to the next of its pool.
        for status, stream in ((500, False), (401, True), (429, False)):  # a 429 may rest the model: last
            _echoing_error(scan, name, status)
            answer = scan.record(
                httpx.post(
                    f"{url}/v1/chat/completions",
                    headers={"authorization": f"Bearer {scan.keys[name]}"},
                    json={"model": "x", "stream": stream, **CHAT},
                    timeout=30,
                )
            )
            assert not scan.fakes[name].replies, f"{name}: the scripted {status} was not asked for: {answer.text}"
    with httpx.Client(base_url=url, timeout=30) as client:
        # bad client keys: unknown, malformed, missing; a key that was revoked
        for headers in (
            {"authorization": "Bearer apk_" + "x" * 43},
            {"authorization": "Basic " + OPENAI_KEY},
            {"x-api-key": ADMIN_SECRET, "anthropic-version": "2023-06-01"},
            {},
        ):
            scan.record(client.post("/v1/chat/completions", headers=headers, json={"model": "x", **CHAT}))
            scan.record(client.post("/v1/messages", headers=headers, json={"model": "x", **MESSAGE}))
        revoked = client.post("/admin/create-key", headers=admin, json={"name": "revoked", "tier": "oa"})
        scan.keys["revoked"] = scan.record_issued(revoked)
        scan.record(client.post(f"/admin/keys/{revoked.json()['id']}/revoke", headers=admin))
        scan.record(
            client.post(
                "/v1/chat/completions",
                headers={"authorization": f"Bearer {scan.keys['revoked']}"},
                json={"model": "x", **CHAT},
            )
        )
        # bad admin secrets: wrong, a prefix of the right one, a client key, missing
        for headers in (
            {"x-admin-secret": "wrong"},
            {"x-admin-secret": ADMIN_SECRET[:-1]},
            {"x-admin-secret": scan.keys["oa"]},
            {},
        ):
            scan.record(client.get("/admin/keys", headers=headers))
        # every admin read, and a write that carries a secret
        for path in ("/admin/catalog", "/admin/keys", "/admin/usage", "/admin/usage?limit=10000"):
            answer = scan.record(client.get(path, headers=admin))
            assert answer.status_code == 200, answer.text
        planted_put: dict[str, Any] = {
            "type": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "api_keys": [OPENAI_KEY + "-2"],
        }
        planted_put["headers"] = {"authorization": HEADER_VALUE}
        scan.record(client.put("/admin/providers/planted", headers=admin, json=planted_put))
        scan.record(client.put("/admin/providers/planted", headers=admin, json={**planted_put, "type": 7}))
        scan.record(client.get("/admin/catalog", headers=admin))
        assert client.get("/health").status_code == 200


def test_no_answer_holds_a_planted_secret(driven: Scan) -> None:
    """Bodies and headers of every answer, the admin API's included."""
    leaks = [(secret, text[:300]) for text in driven.said for secret in driven.secrets() if secret in text]
    assert not leaks, leaks


def test_the_log_holds_no_planted_secret(driven: Scan) -> None:
    """The DEBUG log of all of it."""
    scan = driven
    log = scan.gateway.log()
    assert "DEBUG" in log or "debug" in log, "the gateway did not log at DEBUG: the scan would prove nothing"
    assert "Traceback" not in log, log[-3000:]
    leaks = [secret for secret in scan.secrets() if secret in log]
    assert not leaks, [line for line in log.splitlines() if any(s in line for s in leaks)][:10]


# -- repr() and str() of the objects that hold secrets ----------------------------------------------------------------


def _secret_holders() -> list[object]:
    account = Account(0, OPENAI_KEY, project="p")
    upstream = Upstream(
        name="oa",
        kind=UpstreamKind.OPENAI,
        base_url="http://x",
        accounts=(account, Account(1, REFRESH_TOKEN)),
        headers={"x-planted": HEADER_VALUE},
        options={"oauth_client_secret": OAUTH_CLIENT_SECRET},
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    key = ApiKey(id="k1", digest="d" * 64, prefix="apk_PLAN", name="n", plan="oa", created_at=now)
    plan_ = Plan(name="oa", routes=(Route("m", 1.0),))
    return [
        account,
        upstream,
        key,
        IssuedKey(key, "apk_PLANTED-client-key-0123456789"),
        Principal(key=key, plan=plan_),
        UpstreamCall(
            upstream=upstream, account=account, model=UpstreamModel(name="m", upstream="oa", upstream_model="x")
        ),
        Settings(admin_secret=ADMIN_SECRET, secret_key=GITHUB_TOKEN, shortcuts={"OPENAI_API_KEY": OPENAI_KEY}),
        UpstreamAuthError("The upstream refused the account.", upstream="oa", detail=f"bad key {OPENAI_KEY}"),
    ]


@pytest.mark.parametrize("holder", _secret_holders(), ids=lambda h: type(h).__name__)
def test_repr_and_str_hold_no_secret(holder: object) -> None:
    for text in (repr(holder), str(holder)):
        leaked = [s for s in (*PLANTED, "apk_PLANTED-client-key-0123456789", "d" * 64) if s in text]
        assert not leaked, text
