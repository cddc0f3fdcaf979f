"""``GET /v1/models`` in OpenAI's list shape (docs/behaviour.md §5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def encode_models(names: Sequence[str], *, created: int) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": created, "owned_by": "apipod"} for name in names],
    }
