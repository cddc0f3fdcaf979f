"""``--workers``: a count or ``auto``; what several workers cannot share is refused before anything starts."""

from __future__ import annotations

import logging
import os

import attrs
import pytest

from apipod.bootstrap.settings import ConfigError, load_settings
from apipod.entrypoints.cli.workers import check_workers, worker_count


def test_a_number_or_auto() -> None:
    assert worker_count("1") == 1
    assert worker_count("3") == 3
    assert worker_count("auto") == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-2", "two", ""])
def test_anything_else_is_a_configuration_error(value: str) -> None:
    with pytest.raises(ConfigError, match="--workers"):
        worker_count(value)


def test_several_workers_need_a_shared_database() -> None:
    settings = load_settings({"DATABASE_URL": "sqlite:///:memory:"})
    check_workers(settings, 1)
    with pytest.raises(ConfigError, match="in-memory database"):
        check_workers(settings, 2)


def test_without_redis_the_per_process_limits_are_said(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings({"DATABASE_URL": "sqlite:///apipod.db"})
    with caplog.at_level(logging.WARNING, logger="apipod"):
        check_workers(settings, 1)
        assert not caplog.records
        check_workers(settings, 2)
    assert "without REDIS_URL" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="apipod"):
        check_workers(attrs.evolve(settings, redis_url="redis://127.0.0.1:6379/0"), 2)
    assert not caplog.records
