"""Where scripts get "now" from.

Every script takes ``now_ms`` as ``ARGV[1]``; an empty string makes the script read Redis ``TIME``.
Production uses Redis time (``RedisClock``, the default): one clock for every FerryMQ process, so
no correctness depends on skew between app servers. Tests inject a ``FakeClock`` and move time with
``advance()`` instead of sleeping. Never mix the two in one deployment.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def script_now(self) -> str:
        """The value passed as ``ARGV[1]``: milliseconds as a string, or "" for Redis TIME."""
        ...

    def wall_ms(self) -> int:
        """This process's idea of now, for informational timestamps only (event metadata):
        decisions always use the scripts' now."""
        ...


class RedisClock:
    """Scripts read Redis ``TIME``."""

    def script_now(self) -> str:
        return ""

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class SystemClock:
    """This host's clock (a single-host setup that prefers it to Redis TIME)."""

    def script_now(self) -> str:
        return str(self.wall_ms())

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000


class FakeClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def script_now(self) -> str:
        return str(self.ms)

    def wall_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)
