"""RedisLimitStore against a real Redis at 127.0.0.1:6379: the LimitStore contract on the server's clock
(real sleeps over short windows), key hygiene, error mapping, and one limit shared by two OS processes.

Without a reachable Redis these tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator

import orjson
import pytest
import redis.asyncio as aioredis

from apipod.adapters.redis import RedisLimitStore
from apipod.application.ports import LimitStore
from apipod.domain.errors import StorageError
from apipod.domain.limits import LimitKind, account_cooldown, model_limit
from tests.contracts.limits import Advance, LimitStoreContract, limit_key

REDIS_URL = os.environ.get("APIPOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

pytestmark = pytest.mark.redis


async def _connect() -> aioredis.Redis:
    client = aioredis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=5.0)
    try:
        await client.ping()
    except (aioredis.RedisError, OSError) as exc:
        await client.aclose()
        reason = f"Redis is unreachable at {REDIS_URL} ({type(exc).__name__}: {exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    return client


async def _drop(client: aioredis.Redis, prefix: str) -> None:
    async for key in client.scan_iter(match=f"{prefix}*", count=500):
        await client.delete(key)


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    client = await _connect()
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(client: aioredis.Redis) -> AsyncIterator[str]:
    prefix = f"apipod-test:{uuid.uuid4().hex}:"
    yield prefix
    await _drop(client, prefix)


class TestRedisLimitStore(LimitStoreContract):
    window = 0.5
    slack = 0.06

    @pytest.fixture
    def store(self, client: aioredis.Redis, prefix: str) -> LimitStore:
        return RedisLimitStore(client, prefix=prefix)

    @pytest.fixture
    def advance(self) -> Advance:
        return asyncio.sleep


async def test_keys_carry_the_prefix_and_a_ttl(client: aioredis.Redis, prefix: str) -> None:
    store = RedisLimitStore(client, prefix=prefix)

    rpm = model_limit(LimitKind.MODEL_RPM, "mini")
    conc = model_limit(LimitKind.MODEL_CONCURRENCY, "mini")
    cool = account_cooldown("openai", 0)
    await store.hit(rpm, limit=5, window=30.0)
    await store.acquire(conc, limit=5, lease=20.0)
    await store.cool_down(cool, 10.0)

    keys = sorted([key.decode() async for key in client.scan_iter(match=f"{prefix}*")])
    assert keys == [
        f"{prefix}{{account-cool:openai:0}}:cool",
        f"{prefix}{{model-conc:mini}}:leases",
        f"{prefix}{{model-rpm:mini}}:hits",
        f"{prefix}{{model-rpm:mini}}:hits:total",
    ]
    ttls = {key: await client.pttl(key) for key in keys}
    assert 29_000 < ttls[f"{prefix}{{model-rpm:mini}}:hits"] <= 31_000
    assert 29_000 < ttls[f"{prefix}{{model-rpm:mini}}:hits:total"] <= 31_000
    assert 19_000 < ttls[f"{prefix}{{model-conc:mini}}:leases"] <= 21_000
    assert 9_000 < ttls[f"{prefix}{{account-cool:openai:0}}:cool"] <= 10_000


async def test_a_lost_running_total_is_rebuilt_from_the_log(client: aioredis.Redis, prefix: str) -> None:
    store = RedisLimitStore(client, prefix=prefix)
    total = f"{prefix}{{{limit_key('tpm').value}}}:hits:total"
    assert await store.hit(limit_key("tpm"), limit=10, window=30.0, cost=6) is None
    assert await client.delete(total) == 1

    assert await store.hit(limit_key("tpm"), limit=10, window=30.0, cost=5) is not None
    assert await store.hit(limit_key("tpm"), limit=10, window=30.0, cost=4) is None
    assert await client.get(total) == b"10"


async def test_stores_with_other_prefixes_do_not_share_limits(client: aioredis.Redis, prefix: str) -> None:
    ours = RedisLimitStore(client, prefix=prefix + "a:")
    theirs = RedisLimitStore(client, prefix=prefix + "b:")
    assert await ours.hit(limit_key("k"), limit=1, window=30.0) is None

    assert await theirs.hit(limit_key("k"), limit=1, window=30.0) is None
    assert await ours.hit(limit_key("k"), limit=1, window=30.0) is not None


async def test_a_huge_limit_counts_without_overflow(client: aioredis.Redis, prefix: str) -> None:
    store = RedisLimitStore(client, prefix=prefix)

    assert await store.hit(limit_key("tpm"), limit=2**62, window=30.0, cost=123_456_789) is None
    assert await store.hit(limit_key("tpm"), limit=2**62, window=30.0, cost=2**61) is None
    assert await store.hit(limit_key("tpm"), limit=2**62, window=30.0, cost=2**61) == pytest.approx(30.0, abs=0.1)


async def test_from_url_opens_and_close_closes(prefix: str) -> None:
    store = RedisLimitStore.from_url(REDIS_URL, prefix=prefix)
    try:
        assert await store.hit(limit_key("k"), limit=1, window=30.0) is None
        assert await store.cooling(limit_key("nothing")) == 0.0
    finally:
        await store.close()


async def test_redis_errors_become_storage_errors() -> None:
    store = RedisLimitStore.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        with pytest.raises(StorageError, match="Redis error"):
            await store.hit(limit_key("k"), limit=1, window=1.0)
        with pytest.raises(StorageError):
            await store.acquire(limit_key("k"), limit=1, lease=1.0)
        with pytest.raises(StorageError):
            await store.cooling(limit_key("k"))
    finally:
        await store.close()


_WORKER = """
import asyncio, sys, time
import orjson, redis.asyncio as aioredis
from apipod.adapters.redis import RedisLimitStore
from apipod.domain.limits import LimitKey, LimitKind

def limit_key(name):
    return LimitKey.of(LimitKind.MODEL_RPM, name)

URL, PREFIX, ROUNDS, LIMIT, SLOTS = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

async def race(store):
    hits = leases = 0
    for _ in range(ROUNDS):  # interleave both kinds, so each process keeps racing the other to the end
        hits += await store.hit(limit_key("rpm"), limit=LIMIT, window=30.0) is None
        leases += await store.acquire(limit_key("conc"), limit=SLOTS, lease=30.0) is not None
    return hits, leases

async def main():
    barrier = aioredis.from_url(URL)
    await barrier.incr(PREFIX + "ready")
    deadline = time.monotonic() + 20
    while int(await barrier.get(PREFIX + "ready")) < 2:  # start together, so the processes really race
        if time.monotonic() > deadline:
            sys.exit("the other process never came")
        await asyncio.sleep(0.005)
    await barrier.aclose()
    store = RedisLimitStore.from_url(URL, prefix=PREFIX)
    try:
        counts = await asyncio.gather(*(race(store) for _ in range(4)))
    finally:
        await store.close()
    print(orjson.dumps({"hits": sum(h for h, _ in counts), "leases": sum(x for _, x in counts)}).decode())

asyncio.run(main())
"""


async def test_two_processes_share_one_limit(client: aioredis.Redis, prefix: str) -> None:
    rounds, limit, slots = 100, 500, 300  # 2 processes x 4 tasks x 100 rounds = 800 tries at each
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _WORKER,
            REDIS_URL,
            prefix,
            str(rounds),
            str(limit),
            str(slots),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(2)
    ]
    outputs = [await asyncio.wait_for(worker.communicate(), timeout=60) for worker in workers]

    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()
    counts = [orjson.loads(out) for out, _ in outputs]
    assert sum(count["hits"] for count in counts) == limit
    assert sum(count["leases"] for count in counts) == slots
    assert await RedisLimitStore(client, prefix=prefix).held(limit_key("conc")) == slots
