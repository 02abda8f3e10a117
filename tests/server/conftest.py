"""Fixtures for `ferrymq serve`, the `ferrymq` command and the embedded Redis.

Commands run through the installed console script, in a subprocess, with no FERRYMQ_* variable
of the caller's environment; every process and embedded Redis a test starts is stopped after it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from ferrymq.http.embedded import EmbeddedRedis

FERRYMQ = Path(sys.executable).with_name("ferrymq")
START_TIMEOUT = 15.0


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment without FERRYMQ_* settings, and a default data dir inside the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMQ_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env


@pytest.fixture
def ferrymq(clean_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `ferrymq ARGS...` to completion; ``env`` adds variables."""
    if not FERRYMQ.exists():
        pytest.fail(f"no console script at {FERRYMQ}: pip install -e '.[test]'")

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(FERRYMQ), *args], env={**clean_env, **(env or {})},
                              capture_output=True, text=True, timeout=60)

    return run


@dataclass
class Served:
    """A running `ferrymq serve` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    output: IO[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.output.close()


@pytest.fixture
def serve(clean_env: dict[str, str], tmp_path: Path, unused_tcp_port_factory: Callable[[], int]) -> Iterator[Callable[..., Served]]:
    """Start `ferrymq serve --port <free> ARGS...` and wait until it answers /ping."""
    started: list[Served] = []

    def start(*args: str) -> Served:
        port = unused_tcp_port_factory()
        log_path = tmp_path / f"serve-{len(started)}.log"
        output = open(log_path, "wb")
        process = subprocess.Popen([str(FERRYMQ), "serve", "--port", str(port), *args], env=clean_env,
                                   stdout=output, stderr=subprocess.STDOUT)
        served = Served(process, f"http://127.0.0.1:{port}", log_path, output)
        started.append(served)
        wait_until_answering(served)
        return served

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        served.process.wait()
        served.output.close()


def wait_until_answering(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(served.url + "/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if served.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"ferrymq serve did not start (exit code {served.process.poll()}):\n{served.log()}")
        time.sleep(0.05)


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
