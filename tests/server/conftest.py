"""Fixtures for the embedded Redis (`ferrymq`, `serve` and `clean_env`, for the `ferrymq` command,
live in tests/conftest.py: other folders run it too).

Commands run through the installed console script, in a subprocess, with no FERRYMQ_* variable
of the caller's environment; every process and embedded Redis a test starts is stopped after it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferrymq.server.embedded import EmbeddedRedis


@pytest.fixture
def embedded() -> Iterator[Callable[..., EmbeddedRedis]]:
    """Start an EmbeddedRedis(data_dir, **options); every one is stopped after the test."""
    made: list[EmbeddedRedis] = []

    def start(data_dir: Path, **options: str) -> EmbeddedRedis:
        server = EmbeddedRedis(data_dir, **options)
        made.append(server)
        server.start()
        return server

    yield start
    for server in made:
        server.stop()
