"""The Gemini ``models`` resources for ``GET /v1beta/models[/{model}]`` (docs/protocols/gemini.md §7).

apipod's catalog has no per-model limits, so the token limits are nominal (those of current Gemini models);
the Gemini CLI takes its limits from its own table, not from here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

INPUT_TOKEN_LIMIT = 1_048_576
OUTPUT_TOKEN_LIMIT = 65_536
_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def encode_model(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "baseModelId": name,
        "version": "001",
        "displayName": name,
        "description": f"{name}, served by apipod",
        "inputTokenLimit": INPUT_TOKEN_LIMIT,
        "outputTokenLimit": OUTPUT_TOKEN_LIMIT,
        "supportedGenerationMethods": list(_METHODS),
    }


def encode_models(names: Sequence[str]) -> dict[str, Any]:
    """One page holding every name (no ``nextPageToken``)."""
    return {"models": [encode_model(name) for name in names]}
