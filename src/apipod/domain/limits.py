"""Names of the counters, leases and cooldowns that limits are kept in: one typed value per kind.

Every kind renders into its own namespace, and names from the catalog are escaped, so no two different
limits can share a counter: a model named ``gateway`` does not collide with the gateway-wide concurrency
limit, and an upstream named ``a/b`` does not collide with account ``b`` of upstream ``a``.
"""

from __future__ import annotations

import enum
from functools import lru_cache
from urllib.parse import quote

import attrs


class LimitKind(enum.StrEnum):
    GATEWAY_CONCURRENCY = "gateway-conc"
    KEY_CONCURRENCY = "key-conc"
    KEY_RPM = "key-rpm"
    MODEL_CONCURRENCY = "model-conc"
    MODEL_RPM = "model-rpm"
    MODEL_RPD = "model-rpd"
    MODEL_TPM = "model-tpm"
    ACCOUNT_COOLDOWN = "account-cool"
    PAIR_COOLDOWN = "pair-cool"


def _escape(part: str) -> str:
    return quote(part, safe="")


@attrs.frozen
class LimitKey:
    """``value`` is what stores index by: ``<kind>:<escaped part>:<escaped part>...``."""

    kind: LimitKind
    value: str

    @classmethod
    def of(cls, kind: LimitKind, *parts: str) -> LimitKey:
        return cls(kind, ":".join((kind.value, *map(_escape, parts))))

    def __str__(self) -> str:
        return self.value


GATEWAY_CONCURRENCY = LimitKey.of(LimitKind.GATEWAY_CONCURRENCY)

# PERF: keys are made on every request for the same few names; the caches keep that to a dict lookup.
_cached = lru_cache(maxsize=8192)


@_cached
def key_concurrency(key_id: str) -> LimitKey:
    return LimitKey.of(LimitKind.KEY_CONCURRENCY, key_id)


@_cached
def key_rpm(key_id: str) -> LimitKey:
    return LimitKey.of(LimitKind.KEY_RPM, key_id)


@_cached
def model_limit(kind: LimitKind, model: str) -> LimitKey:
    """``kind`` is one of the MODEL_* kinds."""
    return LimitKey.of(kind, model)


@_cached
def account_cooldown(upstream: str, account: int) -> LimitKey:
    return LimitKey.of(LimitKind.ACCOUNT_COOLDOWN, upstream, str(account))


@_cached
def pair_cooldown(upstream: str, account: int, model: str) -> LimitKey:
    """A rate-limited (account, upstream model) pair rests alone; the account's other models go on."""
    return LimitKey.of(LimitKind.PAIR_COOLDOWN, upstream, str(account), model)
