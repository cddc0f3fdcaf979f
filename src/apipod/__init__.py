"""apipod: a self-hosted AI API gateway.

The public library API (a gateway built from a catalog and adapters) is re-exported here lazily, so that
importing ``apipod`` has no side effects and stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from apipod.domain.catalog import Catalog, ModelLimits, Plan, Route, Upstream, UpstreamKind, UpstreamModel
from apipod.domain.chat import ChatRequest, ChatResult, Message, Role, TextPart, Usage
from apipod.domain.quota import Budget, Window, WindowUnit

if TYPE_CHECKING:
    from apipod.bootstrap.gateway import Gateway, open_gateway

__all__ = [
    "Budget",
    "Catalog",
    "ChatRequest",
    "ChatResult",
    "Gateway",
    "Message",
    "ModelLimits",
    "Plan",
    "Role",
    "Route",
    "TextPart",
    "Upstream",
    "UpstreamKind",
    "UpstreamModel",
    "Usage",
    "Window",
    "WindowUnit",
    "__version__",
    "open_gateway",
]


def __getattr__(name: str) -> Any:
    if name in {"Gateway", "open_gateway"}:
        from apipod.bootstrap import gateway

        return getattr(gateway, name)
    raise AttributeError(name)
