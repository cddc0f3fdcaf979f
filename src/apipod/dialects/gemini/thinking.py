"""``generationConfig.thinkingConfig`` from the canonical ThinkingConfig
(docs/protocols/gemini.md §2.5, docs/protocols/translation.md §5.2).

Gemini 2.5 takes a token budget whose range depends on the model (Pro cannot switch thinking off);
Gemini 3 takes a level and must not get a budget too. Models older than 2.5 get no thinking config at all.
"""

from __future__ import annotations

import re
from typing import Any

from apipod.domain.chat import ThinkingConfig, ThinkingMode

_VERSION = re.compile(r"gemini-(\d+(?:\.\d+)?)")
_EFFORT_BUDGET = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}


def gemini_version(model: str) -> float | None:
    """The model's generation (2.5, 3.0...) or None when the name does not say (``gemini-flash-latest``)."""
    match = _VERSION.search(model.lower())
    return float(match[1]) if match else None


def is_gemini3(model: str) -> bool:
    version = gemini_version(model)
    return version is not None and version >= 3


def thinking_config(thinking: ThinkingConfig, model: str) -> dict[str, Any] | None:
    name = model.lower()
    if "gemini" not in name:
        return None
    version = gemini_version(name)
    if version is not None and version < 2.5:
        return None
    pro = "pro" in name
    flash = "flash" in name
    effort = (thinking.effort or "").lower() or None
    if thinking.mode is ThinkingMode.DISABLED or effort == "none":
        if version is not None and version >= 3:
            return {"thinkingLevel": "MINIMAL" if flash else "LOW", "includeThoughts": False}
        return {"thinkingBudget": 128, "includeThoughts": False} if pro else {"thinkingBudget": 0}
    if version is not None and version >= 3:
        config: dict[str, Any] = {"includeThoughts": True}
        level = _level(thinking, effort, flash)
        if level is not None:
            config["thinkingLevel"] = level
        return config
    budget: int | None = thinking.budget_tokens
    if budget is None and effort is not None:
        budget = _EFFORT_BUDGET.get(effort, 8192)
    if budget is None:
        return {"includeThoughts": True, "thinkingBudget": -1}  # dynamic: the model decides
    low, high = (128, 32768) if pro else ((512, 24576) if "flash-lite" in name else (1, 24576))
    return {"includeThoughts": True, "thinkingBudget": min(max(budget, low), high)}


def _level(thinking: ThinkingConfig, effort: str | None, flash: bool) -> str | None:
    if effort is not None:
        if effort == "minimal":
            return "MINIMAL" if flash else "LOW"
        return "LOW" if effort == "low" else "HIGH"
    if thinking.budget_tokens is not None:
        return "LOW" if thinking.budget_tokens <= 4096 else "HIGH"
    return None  # adaptive / unspecified: the model's default (dynamic, high)
