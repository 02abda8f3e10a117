"""Fixtures for fault tests: `ferrymq serve` processes over a Redis of the test's own (so a test
may stop, kill or restart it). The IronMQ helpers (``iron``) and ``account`` are in
tests/conftest.py: the Sentinel tests use them too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def durable_redis(redis_servers: Callable[..., Any]) -> Any:
    """A Redis of this test's own that loses nothing acknowledged on kill -9 (AOF, fsync always)."""
    return redis_servers("--appendonly", "yes", "--appendfsync", "always")
