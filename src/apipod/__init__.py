"""apipod: a self-hosted AI API gateway.

The public library API (a gateway built from a catalog and adapters) is re-exported here lazily, so that
importing ``apipod`` has no side effects and stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from apipod.bootstrap.gateway import Gateway, GatewayConfig

__all__ = ["Gateway", "GatewayConfig", "__version__"]


def __getattr__(name: str) -> Any:
    if name in {"Gateway", "GatewayConfig"}:
        from apipod.bootstrap import gateway

        return getattr(gateway, name)
    raise AttributeError(name)
