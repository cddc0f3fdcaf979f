"""Upstream side: a Responses client's own body, forwarded to an upstream that serves ``/v1/responses``
(an OpenAI-compatible upstream with the ``responses_api`` option).

Everything the client sent goes through (hosted tools, namespaces, custom tools, ``include``, ``text``...)
except what apipod owns or what OpenAI would refuse (docs/protocols/openai-responses.md §2, §10):

- ``model`` is the upstream's name, ``stream`` what apipod asks for;
- ``client_metadata`` (Codex's, not an OpenAI field: OpenAI answers 400 to unknown fields) is stripped;
- ``store`` is forced false and ``previous_response_id`` removed: apipod keeps the conversation state (the
  HTTP layer has already expanded a ``previous_response_id`` into ``input``), never the upstream;
- reasoning items: the client codec tags ``encrypted_content`` with the upstream kind that made it
  (``"<origin>~<payload>"``, redacted ``"<origin>~redacted~<data>"``, untagged = OpenAI's own). Items this
  upstream kind made go back with the bare payload; items of any other origin, redacted ones and items
  without ``encrypted_content`` are dropped (with ``store`` false OpenAI cannot look a bare id up).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apipod.domain.catalog import UpstreamKind
from apipod.domain.chat import ChatRequest

_DROPPED = ("client_metadata", "previous_response_id")
_TAG = "~"
_REDACTED = "redacted~"
_KINDS = frozenset(kind.value for kind in UpstreamKind)


def encode_passthrough(request: ChatRequest, *, model: str, stream: bool, origin: str = "openai") -> dict[str, Any]:
    """The body for ``POST {base_url}/responses`` from ``request.raw`` (a Responses body). ``origin`` is the
    upstream kind whose reasoning items may go back (the kind that serves this call). The client's body is
    not modified: changed containers are copied, the rest is shared."""
    raw = request.raw
    if raw is None or request.dialect != "responses":
        raise ValueError("encode_passthrough needs a request decoded from a Responses body")
    body = {k: v for k, v in raw.items() if k not in _DROPPED}
    body["model"] = model
    body["stream"] = stream
    body["store"] = False
    if not stream:
        body.pop("stream_options", None)  # only valid with stream: true
    items = raw.get("input")
    if isinstance(items, list):
        body["input"] = _input(items, origin)
    return body


def _input(items: list[Any], origin: str) -> list[Any]:
    """The input items with reasoning items untagged or dropped; the same list when nothing changes."""
    out: list[Any] | None = None
    for index, item in enumerate(items):
        kept = _reasoning(item, origin) if isinstance(item, Mapping) and item.get("type") == "reasoning" else item
        if kept is not item and out is None:
            out = items[:index]
        if out is not None and kept is not None:
            out.append(kept)
    return items if out is None else out


def _reasoning(item: Mapping[str, Any], origin: str) -> Mapping[str, Any] | None:
    content = item.get("encrypted_content")
    if not isinstance(content, str) or not content:
        return None
    payload = untag(content, origin)
    if payload is None:
        return None
    return item if payload is content else {**item, "encrypted_content": payload}


def untag(content: str, origin: str) -> str | None:
    """The payload of a tagged ``encrypted_content`` when ``origin`` made it (untagged content is OpenAI's),
    else None. Redacted content is never forwarded: only its own kind's Messages API reads it."""
    tag, sep, payload = content.partition(_TAG)
    if not sep or not _is_tag(tag):
        return content if origin == "openai" else None
    if tag != origin or payload.startswith(_REDACTED):
        return None
    return payload


def _is_tag(tag: str) -> bool:
    """An upstream kind's value (the client codec's ``reasoning_tags`` rule: any other prefix is no tag)."""
    return tag in _KINDS
