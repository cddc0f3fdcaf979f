"""The adapter side of the upstream error policy: an upstream's refusal is logged for the operator (WARNING,
with the upstream's text, never with the credentials apipod sent) while the raised error's message stays
generic; decoders see the injected clock's time."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import httpx
import pytest

from apipod.adapters.memory.system import FixedClock
from apipod.adapters.retry import NO_RETRY
from apipod.adapters.upstreams._faults import REDACTED, dated, scrub
from apipod.adapters.upstreams.anthropic import AnthropicUpstream
from apipod.adapters.upstreams.copilot import CopilotUpstream
from apipod.adapters.upstreams.openai import OpenAIUpstream
from apipod.application.ports import UpstreamCall
from apipod.dialects import anthropic, openai
from apipod.domain.catalog import Account, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.errors import UpstreamAuthError, UpstreamOverloadedError, UpstreamRateLimitedError
from tests.fakes.asgi import StreamingASGITransport
from tests.fakes.fake_anthropic import FakeAnthropic
from tests.fakes.fake_copilot import GITHUB_TOKEN, FakeCopilot
from tests.fakes.fake_openai import FakeOpenAI
from tests.unit.adapters.upstreams.conftest import KEY, make_call, user_request

SECRET = "sk-ant-api03-SECRET"


@pytest.fixture
def upstream(anthropic_http: httpx.AsyncClient) -> AnthropicUpstream:
    return AnthropicUpstream(anthropic_http, retry=NO_RETRY)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "apipod.upstream"]


@pytest.mark.parametrize("streaming", [False, True])
async def test_an_auth_refusal_is_logged_as_a_warning_and_kept_from_the_error(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture, streaming: bool
) -> None:
    fake_anthropic.reply_error(401, f"invalid x-api-key {SECRET}")
    caplog.set_level(logging.INFO, logger="apipod.upstream")
    call = make_call(UpstreamKind.ANTHROPIC, "http://anthropic.test", name="claude-main")
    with pytest.raises(UpstreamAuthError) as caught:
        await (anext(upstream.stream(call, user_request())) if streaming else upstream.complete(call, user_request()))
    assert SECRET not in caught.value.message and SECRET not in str(caught.value)
    [record] = _records(caplog)
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert "claude-main" in text and "HTTP 401" in text
    assert f"invalid x-api-key {SECRET}" in text  # the upstream's words, for the operator


async def test_our_own_credentials_are_cut_out_of_the_logged_text(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    fake_anthropic.reply_error(403, f"key {KEY} may not use this model")
    caplog.set_level(logging.INFO, logger="apipod.upstream")
    with pytest.raises(UpstreamAuthError):
        await upstream.complete(make_call(UpstreamKind.ANTHROPIC, "http://anthropic.test"), user_request())
    [record] = _records(caplog)
    assert KEY not in record.getMessage()
    assert f"key {REDACTED} may not use this model" in record.getMessage()


async def test_other_failures_are_logged_at_info_and_rejections_without_their_text(
    upstream: AnthropicUpstream, fake_anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apipod.upstream")
    call = make_call(UpstreamKind.ANTHROPIC, "http://anthropic.test")
    fake_anthropic.reply_error(529, "Overloaded right now")
    with pytest.raises(UpstreamOverloadedError):
        await upstream.complete(call, user_request())
    fake_anthropic.reply_error(400, "messages.0.content: my private prompt is wrong")
    with pytest.raises(Exception, match="my private prompt"):
        await upstream.complete(call, user_request())
    overloaded, rejected = _records(caplog)
    assert overloaded.levelno == logging.INFO and "Overloaded right now" in overloaded.getMessage()
    assert rejected.levelno == logging.INFO and "private prompt" not in rejected.getMessage()
    assert "HTTP 400" in rejected.getMessage()


def test_scrub() -> None:
    sent = {"authorization": "Bearer tok-123456", "x-goog-api-key": "AIzaSECRET", "x-custom-token": "t0k3n-9"}
    text = "Bearer tok-123456 and tok-123456 and AIzaSECRET and t0k3n-9 and anthropic-version"
    assert scrub(text, sent) == f"{REDACTED} and {REDACTED} and {REDACTED} and {REDACTED} and anthropic-version"
    assert scrub("no secrets here", {"content-type": "application/json", "x-api-key": ""}) == "no secrets here"


def test_dated_decoders_read_absolute_times_against_the_clock() -> None:
    clock = FixedClock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    headers = {"retry-after": "Sat, 14 Mar 2026 12:01:00 GMT"}
    limited = dated(openai.decode_error, clock)(429, b"{}", headers)
    assert isinstance(limited, UpstreamRateLimitedError) and limited.retry_after == 60.0
    clock.advance(45)
    assert dated(anthropic.decode_error, clock)(529, b"", headers).retry_after == 15.0
    assert dated(anthropic.decode_error, None)(529, b"", headers).retry_after is None


async def test_adapters_pass_their_clock_to_the_decoder(fake_openai: FakeOpenAI) -> None:
    clock = FixedClock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    reset = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1m30s"}
    fake_openai.reply_error(429, "Rate limit reached", kind="requests", code="rate_limit_exceeded", headers=reset)
    fake_openai.reply_error(429, "Rate limit reached", headers={"retry-after": "Sat, 14 Mar 2026 12:00:20 GMT"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(fake_openai)) as http:
        upstream = OpenAIUpstream(http, retry=NO_RETRY, clock=clock)
        call = make_call(UpstreamKind.OPENAI, "http://openai.test/v1")
        with pytest.raises(UpstreamRateLimitedError) as first:
            await upstream.complete(call, user_request())
        with pytest.raises(UpstreamRateLimitedError) as second:
            await upstream.complete(call, user_request())
    assert (first.value.retry_after, second.value.retry_after) == (90.0, 20.0)


@pytest.mark.parametrize("streaming", [False, True])
async def test_copilots_native_messages_refusal_keeps_its_text_from_the_error(
    streaming: bool, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock()
    fake = FakeCopilot(now=lambda: clock.now().timestamp())
    async with httpx.AsyncClient(transport=StreamingASGITransport(fake)) as http:
        copilot = CopilotUpstream(http, clock, retry=NO_RETRY)
        account = Account(0, GITHUB_TOKEN)
        upstream = Upstream(name="copilot", kind=UpstreamKind.COPILOT, base_url="", accounts=(account,))
        call = UpstreamCall(
            upstream, account, UpstreamModel(name="m", upstream="copilot", upstream_model="claude-sonnet-4.5")
        )
        await copilot.complete(call, user_request())  # token and model list in place: the model is native
        refusal = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {SECRET}"}}
        fake.reply_json(refusal, status=401)
        fake.reply_json(refusal, status=401)  # the retry with a fresh token is refused too
        caplog.set_level(logging.INFO, logger="apipod.upstream")
        attempt = anext(copilot.stream(call, user_request())) if streaming else copilot.complete(call, user_request())
        with pytest.raises(UpstreamAuthError) as caught:
            await attempt
    assert fake.chat_requests()[-1].path == "/v1/messages"
    assert SECRET not in caught.value.message
    warnings = [r.getMessage() for r in _records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(SECRET in w for w in warnings)
    assert not any(token in w for w in warnings for token in fake.issued)  # the Copilot tokens apipod sent
