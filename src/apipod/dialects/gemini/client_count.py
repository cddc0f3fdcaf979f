"""``countTokens`` for Gemini clients: the same deterministic estimate Anthropic clients get
(``dialects/anthropic/count_tokens.py``), so both kinds of client see one number for one conversation."""

from __future__ import annotations

from apipod.dialects.anthropic.count_tokens import count_tokens as _estimate
from apipod.domain.chat import ChatRequest


def count_tokens(request: ChatRequest) -> int:
    """About one token per four characters, a fixed amount per image, at least 1 (the Gemini CLI only uses it to
    budget a turn's new media, and falls back to its own estimate when the call fails)."""
    return _estimate(request)
