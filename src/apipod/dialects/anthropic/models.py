"""The Anthropic ``GET /v1/models`` list shape (docs/behaviour.md §5)."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any


def encode_models(names: Sequence[str], *, created: int) -> dict[str, Any]:
    """The names a key may ask for; ``created`` (unix seconds) becomes each entry's RFC 3339 ``created_at``."""
    created_at = datetime.datetime.fromtimestamp(created, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "data": [{"type": "model", "id": name, "display_name": name, "created_at": created_at} for name in names],
        "has_more": False,
        "first_id": names[0] if names else None,
        "last_id": names[-1] if names else None,
    }
