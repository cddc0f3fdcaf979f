"""ResponseHistory: save, load and delete a key's stored responses; retention; the lazy purge."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from apipod.adapters.memory.responses import InMemoryResponseStore
from apipod.adapters.memory.system import FixedClock
from apipod.application.response_history import PURGE_INTERVAL, ResponseHistory, ResponseRetention
from apipod.domain.errors import NotFoundError, StorageError
from apipod.domain.stored_response import StoredResponse

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RESPONSE = {"id": "resp_1", "object": "response", "status": "completed", "output": []}
ITEMS = [{"type": "message", "role": "user", "content": "Hi"}, {"type": "message", "role": "assistant"}]


def history(
    ttl: timedelta = timedelta(days=30),
) -> tuple[ResponseHistory, InMemoryResponseStore, FixedClock]:
    store = InMemoryResponseStore()
    clock = FixedClock(START)
    return ResponseHistory(store, clock, ResponseRetention(ttl)), store, clock


async def test_a_saved_response_loads_for_its_key_until_it_expires() -> None:
    responses, _, clock = history(timedelta(days=2))

    saved = await responses.save("key_1", "resp_1", RESPONSE, ITEMS)

    assert saved == StoredResponse(
        id="resp_1",
        key_id="key_1",
        created_at=START,
        expires_at=START + timedelta(days=2),
        response=RESPONSE,
        items=tuple(ITEMS),
    )
    assert await responses.load("key_1", "resp_1") == saved
    clock.advance(timedelta(days=2).total_seconds() - 0.001)
    assert await responses.load("key_1", "resp_1") == saved
    clock.advance(0.001)
    with pytest.raises(NotFoundError) as caught:
        await responses.load("key_1", "resp_1")
    assert caught.value.message == "No response found with id 'resp_1'."


async def test_another_key_gets_not_found_for_load_and_delete() -> None:
    responses, _, _ = history()
    await responses.save("key_1", "resp_1", RESPONSE, ITEMS)

    with pytest.raises(NotFoundError, match="'resp_1'"):
        await responses.load("key_2", "resp_1")
    with pytest.raises(NotFoundError, match="'resp_1'"):
        await responses.delete("key_2", "resp_1")
    assert (await responses.load("key_1", "resp_1")).id == "resp_1"


async def test_an_unknown_id_is_not_found() -> None:
    responses, _, _ = history()

    with pytest.raises(NotFoundError) as caught:
        await responses.load("key_1", "resp_nope")
    assert caught.value.message == "No response found with id 'resp_nope'."


async def test_delete_forgets_it_and_a_second_delete_is_not_found() -> None:
    responses, store, _ = history()
    await responses.save("key_1", "resp_1", RESPONSE, ITEMS)

    await responses.delete("key_1", "resp_1")

    assert store.size == 0
    with pytest.raises(NotFoundError):
        await responses.load("key_1", "resp_1")
    with pytest.raises(NotFoundError):
        await responses.delete("key_1", "resp_1")


async def test_zero_retention_keeps_nothing() -> None:
    responses, store, _ = history(timedelta(0))

    assert not responses.enabled
    assert await responses.save("key_1", "resp_1", RESPONSE, ITEMS) is None

    assert store.size == 0
    with pytest.raises(NotFoundError):
        await responses.load("key_1", "resp_1")


async def test_zero_retention_still_hides_and_deletes_what_was_kept_before() -> None:
    store = InMemoryResponseStore()
    clock = FixedClock(START)
    await ResponseHistory(store, clock, ResponseRetention()).save("key_1", "resp_1", RESPONSE, ITEMS)
    responses = ResponseHistory(store, clock, ResponseRetention(timedelta(0)))

    with pytest.raises(NotFoundError):
        await responses.load("key_1", "resp_1")
    await responses.delete("key_1", "resp_1")
    assert store.size == 0


async def test_expired_responses_are_purged_by_save_at_most_once_an_hour() -> None:
    responses, store, clock = history(timedelta(minutes=10))
    await responses.save("key_1", "resp_1", RESPONSE, ITEMS)  # the first save purges (nothing yet)
    clock.advance(11 * 60)

    await responses.save("key_1", "resp_2", RESPONSE, ITEMS)
    assert store.size == 2  # resp_1 expired, but the last purge was under an hour ago

    clock.advance(PURGE_INTERVAL - 11 * 60)
    await responses.save("key_1", "resp_3", RESPONSE, ITEMS)
    assert store.size == 1  # resp_1 and resp_2 went
    assert (await responses.load("key_1", "resp_3")).id == "resp_3"


async def test_zero_retention_saves_still_purge_what_expired() -> None:
    store = InMemoryResponseStore()
    clock = FixedClock(START)
    await ResponseHistory(store, clock, ResponseRetention(timedelta(minutes=1))).save("k", "resp_1", RESPONSE, [])
    clock.advance(120)

    await ResponseHistory(store, clock, ResponseRetention(timedelta(0))).save("k", "resp_2", RESPONSE, [])

    assert store.size == 0


async def test_purge_removes_expired_responses_now() -> None:
    responses, store, clock = history(timedelta(minutes=10))
    await responses.save("key_1", "resp_1", RESPONSE, ITEMS)
    clock.advance(10 * 60)

    assert await responses.purge() == 1
    assert store.size == 0


class FailingStore(InMemoryResponseStore):
    def __init__(self, *, put: bool = False, purge: bool = False) -> None:
        super().__init__()
        self._fail_put = put
        self._fail_purge = purge

    async def put(self, stored: StoredResponse) -> None:
        if self._fail_put:
            raise StorageError("The database is down.")
        await super().put(stored)

    async def purge_expired(self, now: datetime) -> int:
        if self._fail_purge:
            raise StorageError("The database is down.")
        return await super().purge_expired(now)


async def test_a_failed_purge_is_logged_and_the_save_stands(caplog: pytest.LogCaptureFixture) -> None:
    store = FailingStore(purge=True)
    responses = ResponseHistory(store, FixedClock(START), ResponseRetention())

    with caplog.at_level(logging.WARNING, logger="apipod.responses"):
        await responses.save("key_1", "resp_1", RESPONSE, ITEMS)

    assert store.size == 1
    assert "purging expired stored responses failed: The database is down." in caplog.text


async def test_a_failed_put_is_raised() -> None:
    responses = ResponseHistory(FailingStore(put=True), FixedClock(START), ResponseRetention())

    with pytest.raises(StorageError):
        await responses.save("key_1", "resp_1", RESPONSE, ITEMS)
