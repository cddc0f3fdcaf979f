"""The tag apipod puts on a reasoning item's ``encrypted_content``: which upstream kind made the opaque payload.

A Responses client replays reasoning items verbatim, whichever upstream served the turn that made them; the tag
lets apipod send each payload back only to the kind that can read it (``ThinkingPart.origin``). Forms:

- ``"<origin>~<signature>"``: signed thinking (an Anthropic signature, a Gemini thought signature, ...);
- ``"<origin>~redacted~<data>"``: Anthropic's redacted thinking;
- anything else (no ``~``, or a prefix that is not an ``UpstreamKind`` value): OpenAI's own blob (``gAAAA...``,
  base64url, which never holds ``~``), origin ``"openai"``.

``origin`` is an ``UpstreamKind`` value (lowercase letters and ``_``), so the first ``~`` ends it unambiguously;
the payload may hold ``~`` itself.
"""

from __future__ import annotations

from apipod.domain.catalog import UpstreamKind
from apipod.domain.chat import RedactedThinkingPart, ThinkingPart

OPENAI = UpstreamKind.OPENAI.value
_KINDS = frozenset(kind.value for kind in UpstreamKind)
_SEP = "~"
_REDACTED = "redacted~"


def tag_signature(origin: str, signature: str) -> str:
    """``signature`` tagged with ``origin``; an unknown origin (``""``) leaves it bare, which reads back as
    OpenAI's."""
    return f"{origin}{_SEP}{signature}" if origin in _KINDS else signature


def tag_redacted(origin: str, data: str) -> str:
    return f"{origin or OPENAI}{_SEP}{_REDACTED}{data}"


def read_tag(content: str, text: str) -> ThinkingPart | RedactedThinkingPart:
    """The canonical part for a reasoning item whose summary reads ``text`` and whose ``encrypted_content`` is
    ``content`` (non-empty)."""
    origin, sep, payload = content.partition(_SEP)
    if not sep or origin not in _KINDS:
        return ThinkingPart(text, signature=content, origin=OPENAI)
    if payload.startswith(_REDACTED):
        return RedactedThinkingPart(payload[len(_REDACTED) :], origin=origin)
    return ThinkingPart(text, signature=payload, origin=origin)
