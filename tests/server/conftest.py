"""Fixtures for the `ferrymq` command and the embedded Redis (`serve` and `clean_env`, for
`ferrymq serve`, live in tests/conftest.py: other folders start servers too).

Commands run through the installed console script, in a subprocess, with no FERRYMQ_* variable
of the caller's environment; every process and embedded Redis a test starts is stopped after it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ferrymq.server.embedded import EmbeddedRedis


@pytest.fixture
def ferrymq(ferrymq_script: Path, clean_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `ferrymq ARGS...` to completion; ``env`` adds variables."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ferrymq_script), *args], env={**clean_env, **(env or {})},
                              capture_output=True, text=True, timeout=60)

    return run


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
