"""The production graph builds, and a gateway opened through it works end to end on the mock upstream."""

from __future__ import annotations

from pathlib import Path

import apipod
from apipod.application.gateway import Gateway
from apipod.bootstrap.container import build_container
from apipod.bootstrap.settings import Settings
from apipod.domain.stream import Finished, TextDelta


async def test_the_production_graph_resolves_over_sqlite(tmp_path: Path) -> None:
    container = build_container(Settings(database_url=f"sqlite:///{tmp_path}/a.db"))
    try:
        gateway = await container.get(Gateway)
        assert isinstance(gateway, Gateway)
    finally:
        await container.close()


async def test_the_library_api_as_the_readme_shows_it(tmp_path: Path) -> None:
    for url in ("memory://", f"sqlite:///{tmp_path}/lib.db"):
        async with apipod.open_gateway(database_url=url) as gateway:
            issued = await gateway.issue_key(name="alice", plan="demo")
            request = apipod.ChatRequest(
                model="demo", messages=(apipod.Message(apipod.Role.USER, (apipod.TextPart("hello there"),)),)
            )
            result = await gateway.complete(issued.plaintext, request)
            assert result.text() == "Echo: hello there"
            assert result.usage.output_tokens == 3
            stream = await gateway.stream(issued.plaintext, request)
            events = [event async for event in stream]
            assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echo: hello there"
            assert isinstance(events[-1], Finished)
            rows = await gateway.usage_log.query(key_id=issued.key.id)
            assert [r.status for r in rows] == ["success", "success"]


async def test_open_gateway_takes_the_embedders_own_adapters_by_port() -> None:
    from datetime import UTC, datetime

    from apipod.adapters.memory.system import FixedClock
    from apipod.application.ports import Clock

    clock = FixedClock(datetime(2031, 5, 6, 7, 8, tzinfo=UTC))
    async with apipod.open_gateway(replace={Clock: clock}) as gateway:
        issued = await gateway.issue_key(name="alice", plan="demo")
    assert issued.key.created_at == clock.now()
