"""In-memory adapters: first-class for embedding and demos (``DATABASE_URL=memory://``) and the fakes of
use-case tests. One process only; nothing survives a restart."""

from apipod.adapters.memory.catalog import InMemoryCatalogStore
from apipod.adapters.memory.keys import InMemoryKeyRepository
from apipod.adapters.memory.quota import InMemoryQuotaLedger
from apipod.adapters.memory.responses import InMemoryResponseStore
from apipod.adapters.memory.system import FixedClock, SeededRandomness, SequentialIdGenerator
from apipod.adapters.memory.usage import InMemoryUsageLog

__all__ = [
    "FixedClock",
    "InMemoryCatalogStore",
    "InMemoryKeyRepository",
    "InMemoryQuotaLedger",
    "InMemoryResponseStore",
    "InMemoryUsageLog",
    "SeededRandomness",
    "SequentialIdGenerator",
]
