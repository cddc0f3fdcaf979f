"""Behaviour every ResponseStore must show. Subclass and provide an (async) ``store`` fixture that yields an
empty store."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from apipod.application.ports import ResponseStore
from apipod.domain.stored_response import StoredResponse
from tests.contracts.builders import NOW

TTL = timedelta(days=30)
MICROSECOND = timedelta(microseconds=1)


def make_stored(
    response_id: str = "resp_1",
    *,
    key_id: str = "key_1",
    created_at: datetime = NOW,
    ttl: timedelta = TTL,
    text: str = "Hello!",
    items: tuple[Mapping[str, Any], ...] | None = None,
) -> StoredResponse:
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    response = {
        "id": response_id,
        "object": "response",
        "created_at": int(created_at.timestamp()),
        "status": "completed",
        "model": "gpt-5",
        "output": [message],
        "usage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
        "previous_response_id": None,
        "store": True,
        "temperature": 0.7,
        "parallel_tool_calls": True,
    }
    if items is None:
        items = (
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
            message,
        )
    return StoredResponse(
        id=response_id,
        key_id=key_id,
        created_at=created_at,
        expires_at=created_at + ttl,
        response=response,
        items=items,
    )


class ResponseStoreContract:
    @pytest.fixture
    def store(self) -> ResponseStore:
        raise NotImplementedError("subclasses provide an empty ResponseStore")

    async def test_get_returns_the_response_put(self, store: ResponseStore) -> None:
        stored = make_stored()

        await store.put(stored)

        assert await store.get("resp_1", key_id="key_1", now=NOW) == stored

    async def test_get_unknown_is_none(self, store: ResponseStore) -> None:
        await store.put(make_stored("resp_1"))

        assert await store.get("resp_2", key_id="key_1", now=NOW) is None

    async def test_another_key_cannot_see_nor_delete_it(self, store: ResponseStore) -> None:
        await store.put(make_stored(key_id="key_1"))

        assert await store.get("resp_1", key_id="key_2", now=NOW) is None
        assert await store.delete("resp_1", key_id="key_2", now=NOW) is False
        assert await store.get("resp_1", key_id="key_1", now=NOW) is not None

    async def test_each_key_sees_only_its_own(self, store: ResponseStore) -> None:
        await store.put(make_stored("resp_a", key_id="key_1", text="one"))
        await store.put(make_stored("resp_b", key_id="key_2", text="two"))

        mine = await store.get("resp_a", key_id="key_1", now=NOW)
        theirs = await store.get("resp_b", key_id="key_2", now=NOW)

        assert mine is not None
        assert theirs is not None
        assert mine.response["output"][0]["content"][0]["text"] == "one"
        assert theirs.response["output"][0]["content"][0]["text"] == "two"

    async def test_it_expires_at_expires_at_exactly(self, store: ResponseStore) -> None:
        stored = make_stored()
        await store.put(stored)

        assert await store.get("resp_1", key_id="key_1", now=stored.expires_at - MICROSECOND) == stored
        assert await store.get("resp_1", key_id="key_1", now=stored.expires_at) is None
        assert await store.get("resp_1", key_id="key_1", now=stored.expires_at + timedelta(days=1)) is None

    async def test_delete_removes_it_once(self, store: ResponseStore) -> None:
        await store.put(make_stored("resp_1"))
        await store.put(make_stored("resp_2"))

        assert await store.delete("resp_1", key_id="key_1", now=NOW) is True

        assert await store.get("resp_1", key_id="key_1", now=NOW) is None
        assert await store.delete("resp_1", key_id="key_1", now=NOW) is False
        assert await store.get("resp_2", key_id="key_1", now=NOW) is not None

    async def test_delete_of_an_expired_response_is_false(self, store: ResponseStore) -> None:
        stored = make_stored()
        await store.put(stored)

        assert await store.delete("resp_1", key_id="key_1", now=stored.expires_at) is False

    async def test_delete_unknown_is_false(self, store: ResponseStore) -> None:
        assert await store.delete("resp_nope", key_id="key_1", now=NOW) is False

    async def test_put_replaces_a_response_with_the_same_id(self, store: ResponseStore) -> None:
        await store.put(make_stored(text="first"))
        later = make_stored(text="second", created_at=NOW + timedelta(minutes=1))

        await store.put(later)

        assert await store.get("resp_1", key_id="key_1", now=NOW + timedelta(minutes=1)) == later

    async def test_purge_removes_what_expired_at_now_and_nothing_else(self, store: ResponseStore) -> None:
        await store.put(make_stored("resp_old", ttl=timedelta(hours=1)))
        await store.put(make_stored("resp_edge", ttl=timedelta(hours=2)))
        await store.put(make_stored("resp_new", ttl=timedelta(hours=2) + MICROSECOND))
        now = NOW + timedelta(hours=2)

        assert await store.purge_expired(now) == 2

        assert await store.get("resp_new", key_id="key_1", now=now) is not None
        # Gone for good, not only hidden: an earlier "now" no longer finds them.
        assert await store.get("resp_old", key_id="key_1", now=NOW) is None
        assert await store.get("resp_edge", key_id="key_1", now=NOW) is None
        assert await store.purge_expired(now) == 0

    async def test_purge_of_an_empty_store_is_zero(self, store: ResponseStore) -> None:
        assert await store.purge_expired(NOW) == 0

    async def test_purge_counts_every_expired_response_however_many(self, store: ResponseStore) -> None:
        for n in range(1203):
            await store.put(make_stored(f"resp_{n}", key_id=f"key_{n % 7}", ttl=timedelta(minutes=1), items=()))
        await store.put(make_stored("resp_kept"))

        assert await store.purge_expired(NOW + timedelta(minutes=1)) == 1203

        assert await store.get("resp_kept", key_id="key_1", now=NOW + timedelta(minutes=1)) is not None

    async def test_large_items_come_back_whole(self, store: ResponseStore) -> None:
        big = "x" * (4 * 1024 * 1024)
        outputs: list[dict[str, Any]] = [
            {"type": "function_call_output", "call_id": f"call_{n}", "output": f"line {n}\n" * 50} for n in range(2000)
        ]
        items = (*outputs, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": big}]})
        stored = make_stored(items=items)

        await store.put(stored)

        got = await store.get("resp_1", key_id="key_1", now=NOW)
        assert got is not None
        assert got.items == items
        assert len(got.items[-1]["content"][0]["text"]) == len(big)

    async def test_unicode_and_escapes_survive(self, store: ResponseStore) -> None:
        text = 'héllo — 世界 🦀🧪 مرحبا e\u0301 "quoted" \\back\\slash\ttab\nline \x00nul \u2028 \U0010ffff'
        stored = make_stored("resp_ü🦀", key_id="key_ß", text=text, items=({"type": "message", "text": text},))

        await store.put(stored)

        got = await store.get("resp_ü🦀", key_id="key_ß", now=NOW)
        assert got == stored
        assert got is not None
        assert got.response["output"][0]["content"][0]["text"] == text

    async def test_json_values_keep_their_types(self, store: ResponseStore) -> None:
        item: dict[str, Any] = {
            "null": None,
            "true": True,
            "false": False,
            "int": 2**53,
            "negative": -7,
            "float": 0.1,
            "empty_object": {},
            "empty_list": [],
            "nested": {"a": [1, {"b": [None, "c"]}]},
        }
        stored = make_stored(items=(item,))

        await store.put(stored)

        got = await store.get("resp_1", key_id="key_1", now=NOW)
        assert got is not None
        assert got.items == (item,)
        assert type(got.items[0]["int"]) is int
        assert type(got.items[0]["float"]) is float

    async def test_empty_items_are_kept(self, store: ResponseStore) -> None:
        stored = make_stored(items=())

        await store.put(stored)

        got = await store.get("resp_1", key_id="key_1", now=NOW)
        assert got is not None
        assert got.items == ()

    async def test_datetimes_come_back_timezone_aware(self, store: ResponseStore) -> None:
        await store.put(make_stored(created_at=NOW + timedelta(seconds=1, microseconds=250)))

        got = await store.get("resp_1", key_id="key_1", now=NOW + timedelta(seconds=2))

        assert got is not None
        assert got.created_at == NOW + timedelta(seconds=1, microseconds=250)
        assert got.created_at.utcoffset() == timedelta(0)
        assert got.expires_at == got.created_at + TTL
        assert got.expires_at.utcoffset() == timedelta(0)
