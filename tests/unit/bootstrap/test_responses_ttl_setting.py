"""RESPONSES_TTL_DAYS: how long stored Responses API responses live, and its way into the container."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from apipod.application.ports import ResponseStore
from apipod.application.response_history import ResponseHistory, ResponseRetention
from apipod.bootstrap.container import build_container
from apipod.bootstrap.settings import ConfigError, Settings, load_settings


@pytest.mark.parametrize(("raw", "days"), [(None, 30), ("", 30), ("7", 7), ("0", 0), ("3650", 3650)])
def test_responses_ttl_days_is_read(raw: str | None, days: int) -> None:
    env = {} if raw is None else {"RESPONSES_TTL_DAYS": raw}
    assert load_settings(env).responses_ttl_days == days


@pytest.mark.parametrize(("raw", "fragment"), [("-1", "negative"), ("1.5", "whole number"), ("3651", "at most")])
def test_a_bad_responses_ttl_days_is_named(raw: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="RESPONSES_TTL_DAYS") as caught:
        load_settings({"RESPONSES_TTL_DAYS": raw})
    assert fragment in str(caught.value)


async def test_the_container_builds_response_history_with_the_settings_retention(tmp_path: Path) -> None:
    container = build_container(Settings(database_url=f"sqlite:///{tmp_path}/a.db", responses_ttl_days=3))
    try:
        assert await container.get(ResponseRetention) == ResponseRetention(timedelta(days=3))
        history = await container.get(ResponseHistory)
        saved = await history.save("key_1", "resp_1", {"id": "resp_1"}, [{"type": "message"}])
        assert saved is not None
        assert saved.expires_at - saved.created_at == timedelta(days=3)
        store = await container.get(ResponseStore)
        assert await store.get("resp_1", key_id="key_1", now=saved.created_at) == saved
    finally:
        await container.close()
