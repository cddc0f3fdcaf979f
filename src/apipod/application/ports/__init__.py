"""The ports: what the use cases need from the outside world, as ``typing.Protocol`` classes."""

from apipod.application.ports.catalog import CatalogStore
from apipod.application.ports.keys import KeyRepository
from apipod.application.ports.limits import LimitStore
from apipod.application.ports.quota import QuotaLedger
from apipod.application.ports.responses import ResponseStore
from apipod.application.ports.system import Clock, IdGenerator, Randomness
from apipod.application.ports.telemetry import (
    REQUEST_NOTES,
    FinishedRequest,
    MetricsPage,
    NoTelemetry,
    RequestNotes,
    Telemetry,
)
from apipod.application.ports.upstream import EventBatches, UpstreamCall, UpstreamClient, UpstreamRegistry
from apipod.application.ports.usage import UsageLog

__all__ = [
    "REQUEST_NOTES",
    "CatalogStore",
    "Clock",
    "EventBatches",
    "FinishedRequest",
    "IdGenerator",
    "KeyRepository",
    "LimitStore",
    "MetricsPage",
    "NoTelemetry",
    "QuotaLedger",
    "Randomness",
    "RequestNotes",
    "ResponseStore",
    "Telemetry",
    "UpstreamCall",
    "UpstreamClient",
    "UpstreamRegistry",
    "UsageLog",
]
