"""A response kept for the Responses API's ``store: true``: what ``GET /v1/responses/{id}`` returns and what a
follow-up naming it in ``previous_response_id`` continues from. Scoped to the key that made it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs


@attrs.frozen(kw_only=True)
class StoredResponse:
    """Attributes:
    id: the response id (``resp_...``).
    key_id: the API key that made it; no other key may read or delete it.
    response: the Response object as the client got it (wire JSON).
    items: the conversation a follow-up continues from, input items then output items (wire JSON),
        already including the items of the response it followed.
    """

    id: str
    key_id: str
    created_at: datetime
    expires_at: datetime
    response: Mapping[str, Any]
    items: tuple[Mapping[str, Any], ...]

    def is_expired(self, now: datetime) -> bool:
        return now >= self.expires_at
