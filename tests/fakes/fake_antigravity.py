"""A scriptable fake of Antigravity: Google's OAuth token endpoint plus the Cloud Code ``v1internal`` API
(docs/protocols/antigravity.md), speaking the wire format: form-encoded refresh, ``{"response": ..., "traceId": ...}``
envelopes, SSE frames ``data: ...\\r\\n\\r\\n``, Google error bodies.

- ``POST /token``: refreshes ``refresh_tokens`` with the configured client credentials, counting refreshes
  (``refreshes``); answers ``invalid_grant`` / ``invalid_client`` like Google. ``expires_in``,
  ``token_delay`` (seconds before answering) and ``token_failure`` (a status to answer instead) are settable.
- ``POST /v1internal:loadCodeAssist`` / ``:onboardUser``: the project of the token's account (``projects``);
  an account without one is onboarded after ``onboard_polls`` polls into ``onboard_project``.
- ``POST /v1internal:generateContent`` / ``:streamGenerateContent?alt=sse``: validates the envelope (and
  rejects ``cache_control`` and Anthropic-style fields as Cloud Code does), then answers from the script
  queue or with a short text. ``:fetchAvailableModels`` answers the fixture.
- ``host_status``: a status every request to that host (the ``Host`` header) answers, for host fallback.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from tests.fakes.scripted import Recorded, Reply, ScriptedUpstream
from tests.fixture_path import fixture

CLIENT_ID = "1234567890-fake.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-fake-secret"
TRACE_ID = "0a1b2c3d4e5f6a7b"
_REJECTED_FIELDS = ("messages", "max_tokens", "anthropic_version", "system")


def envelope_frames(chunks: Iterable[Mapping[str, Any]]) -> list[bytes]:
    """Gemini chunks wrapped as Cloud Code streams them."""
    return [b"data: " + orjson.dumps({"response": c, "traceId": TRACE_ID}) + b"\r\n\r\n" for c in chunks]


def text_response(text: str, *, model: str, prompt: int = 7, output: int = 5) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        },
        "modelVersion": model,
        "responseId": "msg_vrtx_fake",
    }


def google_error(code: int, status: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status}}


class FakeAntigravity(ScriptedUpstream):
    """``refresh_tokens`` maps each known refresh token to its account's project (None: not onboarded)."""

    def __init__(
        self,
        refresh_tokens: Mapping[str, str | None],
        *,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        expires_in: int = 3599,
    ) -> None:
        super().__init__()
        self.projects: dict[str, str | None] = dict(refresh_tokens)
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.token_delay = 0.0
        self.token_failure: int | None = None  # a status the token endpoint answers instead of a token
        self.refreshes = 0
        self.onboard_polls = 1
        self.onboard_project = "onboarded-project-1"
        self.host_status: dict[str, int] = {}
        self.models_body: Any = orjson.loads(fixture("antigravity/fetch_available_models_response.json").read_bytes())
        self._access: dict[str, str] = {}  # live access token -> refresh token
        self._serial = itertools.count(1)
        self._onboard_seen = 0

    # -- scripting -------------------------------------------------------------------------------------
    def reply_response(self, response: Mapping[str, Any], *, status: int = 200) -> None:
        """A non-streamed answer: ``response`` wrapped in the envelope."""
        self.reply_json({"response": response, "traceId": TRACE_ID}, status=status)

    def reply_stream(self, chunks: Iterable[Mapping[str, Any]], *, delay: float = 0.0) -> None:
        self.reply_sse(envelope_frames(chunks), delay=delay)

    def reply_error(self, code: int, status: str, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        self.reply_json(google_error(code, status, message), status=code, headers=headers)

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far now answers 401 (as after Google revoked or expired them)."""
        self._access.clear()

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == f"/v1internal:{method}"]

    # -- routing ---------------------------------------------------------------------------------------
    def respond(self, request: Recorded) -> Reply:
        status = self.host_status.get(request.headers.get("host", "").split(":")[0])
        if status is not None:
            return Reply(status=status, body=google_error(status, "UNAVAILABLE", "The service is unavailable."))
        if request.method == "POST" and request.path == "/token":
            return self._token(request)
        auth = request.headers.get("authorization", "")
        refresh = self._access.get(auth.removeprefix("Bearer "))
        if not auth.startswith("Bearer ") or refresh is None:
            message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
            return Reply(status=401, body=google_error(401, "UNAUTHENTICATED", message))
        method = request.path.removeprefix("/v1internal:")
        if request.method != "POST" or method == request.path:
            return Reply(status=404, body=google_error(404, "NOT_FOUND", "Requested entity was not found."))
        if method == "loadCodeAssist":
            return Reply(body=self._load(refresh))
        if method == "onboardUser":
            return Reply(body=self._onboard(refresh))
        if method == "fetchAvailableModels":
            return Reply(body=self.models_body)
        if method in ("generateContent", "streamGenerateContent"):
            return self._generate(request, streaming=method == "streamGenerateContent")
        return Reply(status=404, body=google_error(404, "NOT_FOUND", "Requested entity was not found."))

    def _token(self, request: Recorded) -> Reply:
        raw = request.body if isinstance(request.body, bytes) else b""
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        reply = self._token_answer(form)
        if self.token_delay:
            reply.hang = self.token_delay
        return reply

    def _token_answer(self, form: Mapping[str, str]) -> Reply:
        if self.token_failure is not None:
            return Reply(status=self.token_failure, body={"error": "internal_failure"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Reply(status=401, body={"error": "invalid_client", "error_description": "Unauthorized"})
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in self.projects:
            body = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            return Reply(status=400, body=body)
        self.refreshes += 1
        access = f"ya29.fake-{next(self._serial)}"
        self._access[access] = form["refresh_token"]
        body = {
            "access_token": access,
            "expires_in": self.expires_in,
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "token_type": "Bearer",
        }
        return Reply(body=body)

    def _load(self, refresh: str) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "currentTier": {"id": "free-tier", "name": "Free"},
            "allowedTiers": [{"id": "free-tier", "isDefault": True}, {"id": "standard-tier"}],
        }
        project = self.projects.get(refresh)
        if project:
            answer["cloudaicompanionProject"] = project
        return answer

    def _onboard(self, refresh: str) -> dict[str, Any]:
        self._onboard_seen += 1
        if self._onboard_seen < self.onboard_polls:
            return {"name": "operations/onboard-1", "done": False}
        self.projects[refresh] = self.onboard_project
        return {
            "name": "operations/onboard-1",
            "done": True,
            "response": {"cloudaicompanionProject": {"id": self.onboard_project}},
        }

    def _generate(self, request: Recorded, *, streaming: bool) -> Reply:
        body = request.body
        inner = body.get("request") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or not isinstance(inner, dict)
            or not body.get("project")
            or not body.get("model")
        ):
            return _invalid("Invalid JSON payload: the request needs project, model and request.")
        if any(field in inner for field in _REJECTED_FIELDS):
            return _invalid('Invalid JSON payload received. Unknown name "messages": Cannot find field.')
        if b"cache_control" in orjson.dumps(body):
            return _invalid("cache_control: Extra inputs are not permitted")
        if not inner.get("contents"):
            return _invalid("* GenerateContentRequest.contents: contents is not specified")
        if streaming and request.query.get("alt") != ["sse"]:
            return _invalid("this fake streams only with alt=sse")
        scripted = self.scripted()
        if scripted is not None:
            return scripted
        model = str(body["model"])
        if not streaming:
            return Reply(
                body={"response": text_response("Hello from fake Antigravity.", model=model), "traceId": TRACE_ID}
            )
        first = text_response("Hello", model=model)
        del first["candidates"][0]["finishReason"]
        return Reply(frames=envelope_frames([first, text_response(" from fake Antigravity.", model=model)]))


def _invalid(message: str) -> Reply:
    return Reply(status=400, body=google_error(400, "INVALID_ARGUMENT", message))
