"""Redis adapters: state that every apipod process must share (rate windows, concurrency leases, cooldowns).
May import application, domain and redis-py."""

from apipod.adapters.redis.limits import RedisLimitStore

__all__ = ["RedisLimitStore"]
