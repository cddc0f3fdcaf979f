"""A scriptable fake of GitHub (device flow, Copilot token exchange) and Copilot's chat API, one ASGI app.

Built from docs/protocols/copilot.md and the fixtures in tests/fixtures/copilot:

- ``POST /login/device/code`` answers ``device_code_response.json``; ``POST /login/oauth/access_token``
  answers the queued poll bodies (``polls``, by default the fixture's pending, slow_down and success
  entries); the token it hands out becomes a GitHub token the exchange accepts.
- ``GET /copilot_internal/v2/token`` mints ``token_response.json``-shaped tokens whose ``expires_at`` is
  ``now() + lifetime`` (``now`` is injectable so a fake clock drives expiry), optionally slowly
  (``exchange_delay``); 401 for an unknown GitHub token, 403 with ``error_details`` for one without a seat.
- Copilot's API (any host: tests reach it through the client's transport): ``GET /models`` from
  ``models_response.json``; ``POST /chat/completions`` streaming ``stream_usage_in_finish_chunk.sse`` byte
  for byte by default; ``POST /v1/messages`` for models that list it. A model not in the list answers the
  ``error_400_model_not_supported.json`` fixture. A Copilot token not issued (or expired by
  ``expire_tokens()``) answers 401.

Chat replies may be scripted with the ``ScriptedUpstream`` queue; token-exchange answers with
``exchange_replies``. Every request is logged, headers included.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from tests.fakes.scripted import Recorded, Reply, ScriptedUpstream, sse_frames_from_fixture
from tests.fixture_path import fixture

GITHUB_TOKEN = "ghu_fakeGithubToken0001"
TOKEN_PATH = "/copilot_internal/v2/token"
REQUIRED_HEADERS = ("editor-version", "copilot-integration-id")


def load(relative: str) -> Any:
    return orjson.loads(fixture(relative).read_bytes())


def poll_bodies(*errors: str) -> list[dict[str, Any]]:
    """Device-flow poll answers from the fixture, by ``error`` value (``"success"`` for the token)."""
    by_name = {str(body.get("error", "success")): body for body in load("copilot/device_poll_responses.json")}
    return [by_name[name] for name in errors]


class FakeCopilot(ScriptedUpstream):
    """The fake. ``github_tokens``: GitHub tokens the exchange accepts; ``seatless``: accepted tokens whose
    user has no Copilot seat (403). ``lifetime``/``refresh_in`` shape minted tokens."""

    def __init__(
        self,
        *,
        github_tokens: Iterable[str] = (GITHUB_TOKEN,),
        seatless: Iterable[str] = (),
        now: Callable[[], float] = time.time,
        lifetime: float = 1800.0,
        refresh_in: float | None = 1500.0,
        api: str | None = None,
        exchange_delay: float = 0.0,
        polls: Iterable[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.github_tokens = set(github_tokens) | set(seatless)
        self.seatless = set(seatless)
        self.now = now
        self.lifetime = lifetime
        self.refresh_in = refresh_in
        self.token_template: dict[str, Any] = load("copilot/token_response.json")
        if api is not None:
            self.token_template["endpoints"]["api"] = api
        self.exchange_delay = exchange_delay
        self.exchange_replies: deque[Reply] = deque()
        self.polls: deque[dict[str, Any]] = deque(
            polls if polls is not None else poll_bodies("authorization_pending", "slow_down", "success")
        )
        self.models_body: dict[str, Any] = load("copilot/models_response.json")
        self.issued: list[str] = []  # Copilot tokens in minting order
        self.valid: set[str] = set()
        self._serial = itertools.count(1)

    # -- scripting and inspection ---------------------------------------------------------------------------
    def expire_tokens(self) -> None:
        """Every Copilot token issued so far is refused from now on (as after its expiry)."""
        self.valid.clear()

    @property
    def exchanges(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(TOKEN_PATH)]

    @property
    def api_requests(self) -> list[Recorded]:
        """Requests to Copilot's API (chat, messages, models)."""
        return [r for r in self.requests if not r.path.startswith("/login/") and not r.path.endswith(TOKEN_PATH)]

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.api_requests if r.method == "POST"]

    def native_models(self) -> list[str]:
        return [m["id"] for m in self.models_body["data"] if "/v1/messages" in m.get("supported_endpoints", ())]

    # -- routing --------------------------------------------------------------------------------------------
    def respond(self, request: Recorded) -> Reply:
        if request.path == "/login/device/code":
            return self._device_code(request)
        if request.path == "/login/oauth/access_token":
            return self._poll(request)
        if request.path.endswith(TOKEN_PATH):  # GitHub Enterprise serves it under /api/v3
            reply = self.exchange_replies.popleft() if self.exchange_replies else self._exchange(request)
            reply.hang = reply.hang or self.exchange_delay
            return reply
        return self._api(request)

    def _device_code(self, request: Recorded) -> Reply:
        if not isinstance(request.body, dict) or not request.body.get("client_id"):
            return Reply(status=400, body={"error": "Not Found"})
        return Reply(body=load("copilot/device_code_response.json"))

    def _poll(self, request: Recorded) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        expected = load("copilot/device_code_response.json")["device_code"]
        if body.get("device_code") != expected or not body.get("grant_type", "").endswith("device_code"):
            return Reply(body={"error": "incorrect_device_code", "error_description": "The device_code is wrong."})
        answer = self.polls.popleft() if self.polls else poll_bodies("authorization_pending")[0]
        if "access_token" in answer:
            self.github_tokens.add(answer["access_token"])
        return Reply(body=answer)

    def _exchange(self, request: Recorded) -> Reply:
        scheme, _, github_token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("token", "bearer") or github_token not in self.github_tokens:
            return Reply(
                status=401, body={"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}
            )
        if github_token in self.seatless:
            details = {"url": "https://github.com/settings/copilot", "message": "No Copilot seat for this user."}
            return Reply(status=403, body={"error_details": details, "message": "Resource not accessible"})
        n = next(self._serial)
        expires_at = int(self.now() + self.lifetime)
        token = f"tid=fake{n:04d};exp={expires_at};sku=monthly_subscriber;st=dotcom;chat=1;8kp=1:FAKEMAC{n}"
        self.issued.append(token)
        self.valid.add(token)
        body = {**self.token_template, "token": token, "expires_at": expires_at}
        if self.refresh_in is None:
            body.pop("refresh_in", None)
        else:
            body["refresh_in"] = int(self.refresh_in)
        return Reply(body=body)

    def _api(self, request: Recorded) -> Reply:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid:
            return _error(401, "unauthorized: token expired", code="unauthorized", kind="authentication_error")
        missing = [h for h in REQUIRED_HEADERS if not request.headers.get(h)]
        if missing:
            return _error(400, f"missing {missing[0]} header", code="bad_request")
        if request.method == "GET" and request.path == "/models":
            return self.scripted() or Reply(body=self.models_body)
        body = request.body if isinstance(request.body, dict) else {}
        model = body.get("model")
        if request.method == "POST" and request.path == "/chat/completions":
            if model not in self._chat_models():
                return Reply(status=400, body=load("copilot/error_400_model_not_supported.json"))
            for message in body.get("messages", []):
                if message.get("role") == "assistant" and not isinstance(message.get("content"), str | None):
                    return _error(400, "assistant content must be a string", code="invalid_request_body")
            return self.scripted() or _chat_default(body)
        if request.method == "POST" and request.path == "/v1/messages":
            if model not in self.native_models():
                return Reply(status=400, body=load("copilot/error_400_model_not_supported.json"))
            return self.scripted() or _messages_default(body)
        return _error(404, f"no route for {request.method} {request.path}", code="not_found")

    def _chat_models(self) -> list[str]:
        return [m["id"] for m in self.models_body["data"] if m["capabilities"]["type"] == "chat"]


def _error(status: int, message: str, *, code: str, kind: str = "invalid_request_error") -> Reply:
    return Reply(status=status, body={"error": {"message": message, "code": code, "type": kind}})


def _chat_default(body: dict[str, Any]) -> Reply:
    """Non-stream: the fixture stream's answer as one ``chat.completion`` with Copilot's extra keys."""
    if body.get("stream"):
        return Reply(frames=sse_frames_from_fixture(fixture("copilot/stream_usage_in_finish_chunk.sse")))
    usage = {
        "completion_tokens": 2,
        "completion_tokens_details": {"accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        "prompt_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 0},
        "total_tokens": 11,
    }
    choice = {
        "finish_reason": "stop",
        "index": 0,
        "message": {"content": "Hello!", "role": "assistant", "padding": "abcdefghijklmnopqrstuvwxyz0123"},
    }
    return Reply(
        body={
            "choices": [choice],
            "created": 1732790000,
            "id": "chatcmpl-ExampleCopilot02",
            "model": "gpt-4.1-2025-04-14",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            "usage": usage,
        }
    )


def _messages_default(body: dict[str, Any]) -> Reply:
    if body.get("stream"):
        return Reply(frames=sse_frames_from_fixture(fixture("anthropic/stream_thinking_then_text.sse")))
    answer = load("anthropic/message_text.json")
    answer["model"] = body.get("model")
    return Reply(body=answer)
