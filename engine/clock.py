"""Where scripts get "now" from.

Every script takes ``now_ms`` as ``ARGV[1]``; an empty string makes the script read Redis ``TIME``.
Production uses Redis time (``RedisClock``, the default): one clock for every FerryMQ process, so
no correctness depends on skew between app servers. Tests inject a ``FakeClock`` and move time with
``advance()`` instead of sleeping. Never mix the two in one deployment.

Theory of operation (``RedisClock``)
------------------------------------
A script that reads ``TIME`` pays ~9 thousand instructions for it, of a ~140 thousand call
(callgrind, bench/RESULTS.md "Engine: Redis time read once a second"). So the engine reads
``TIME`` itself about once a second (``reading_due``, then ``read`` with the reply and the
moments the command was sent and answered), and the clock passes Redis's time to the scripts as
this host's monotonic clock plus the offset of the last reading. A reading is trusted only when
its round trip was short, so it is off by less than half of ``MAX_ROUND_TRIP``; between readings
the two clocks drift apart by microseconds. So processes agree on the time within ~10 ms (the
scripts' TIME did exactly), and a process's own now may step back by as much after a reading:
nothing orders by it across calls but message ids, which a queue keeps increasing itself. On a
cluster a process reads the time of one node (its client's default) for every queue; the nodes'
clocks are as close as their hosts' (NTP). Until a trusted reading, and when the last one is
older than ``STALE`` (the engine stopped reading: say Redis is unreachable), ``script_now`` is
"" and the scripts read ``TIME`` themselves, as they always did.

The clock does no I/O: the engines' drivers (``sync.py``, ``aio.py``) send ``TIME``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    def script_now(self) -> str:
        """The value passed as ``ARGV[1]``: milliseconds as a string, or "" for Redis TIME."""
        ...

    def wall_ms(self) -> int:
        """This process's idea of now, for informational timestamps only (event metadata):
        decisions always use the scripts' now."""
        ...


class RedisClock:
    """Redis's time: read by the engine about once a second, followed on this host's monotonic
    clock in between (see the module docstring)."""

    READ_EVERY = 1.0
    """Seconds between readings, trusted or not (a reading that failed is not tried again sooner:
    where every round trip is slow, the scripts read TIME and the engine one TIME a second)."""
    MAX_ROUND_TRIP = 0.02
    """Seconds a reading's round trip may take to be trusted: Redis answered somewhere in it, so
    the clock is off by less than half of it. A busy event loop lengthens round trips: a reading
    not trusted leaves the last trusted one in use (until ``STALE``)."""
    STALE = 10.0
    """Seconds after which a reading is no longer used (the scripts read TIME again)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self._offset_ms: float | None = None
        """Redis time minus the monotonic clock, in ms, from the last trusted reading."""
        self._read_at = 0.0
        self._next_read = 0.0

    def script_now(self) -> str:
        if self._offset_ms is None:
            return ""
        now = self.monotonic()
        if now - self._read_at > self.STALE:
            return ""
        return str(int(now * 1000 + self._offset_ms))

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def reading_due(self) -> bool:
        """Whether the engine should send ``TIME`` now (and give the reply to ``read``)."""
        return self.monotonic() >= self._next_read

    def reading_sent(self) -> float:
        """Marks a reading as under way (the next is due READ_EVERY later); its moment."""
        now = self.monotonic()
        self._next_read = now + self.READ_EVERY
        return now

    def read(self, reply: Any, sent_at: float) -> None:
        """A ``TIME`` reply (seconds and microseconds, as numbers or text), sent at ``sent_at``
        (``reading_sent``) and received just now. An exception instead of a reply, or a slow
        round trip, changes nothing."""
        received_at = self.monotonic()
        if isinstance(reply, BaseException) or received_at - sent_at > self.MAX_ROUND_TRIP:
            return
        seconds, micros = int(reply[0]), int(reply[1])
        self._offset_ms = seconds * 1000 + micros / 1000 - (sent_at + received_at) * 500
        self._read_at = received_at


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
