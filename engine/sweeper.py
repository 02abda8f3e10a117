"""Background maintenance for queues nobody reads.

Reads and writes maintain the queues they touch. A queue nobody touches still has to expire its
messages, requeue (or dead-letter) lapsed reservations and move its dead letters; the sweeper
runs the same bounded ``maintain`` script over every queue. Any number of processes may run a
Sweeper: a lease in Redis lets one of them sweep at a time, and another takes over within
``lease_ttl`` seconds if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets

from .aio import AsyncEngine
from .limits import SWEEP_INTERVAL
from .models import SweepReport

log = logging.getLogger("ferrymq.sweeper")


class Sweeper:
    def __init__(self, engine: AsyncEngine, *, interval: float = SWEEP_INTERVAL, lease_ttl: float = 15.0) -> None:
        self.engine = engine
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.holder = secrets.token_hex(8)
        self.last: SweepReport | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._failing: set[tuple[str, str]] = set()
        """Queues whose last sweep failed: logged when they start failing and when they recover,
        not once a second in between."""

    async def sweep_once(self) -> SweepReport | None:
        """One pass if this process holds (or takes) the lease; None otherwise."""
        if not await self.engine.lease("sweeper", self.holder, self.lease_ttl):
            return None
        self.last = await self.engine.sweep()
        self._log_failures(self.last)
        return self.last

    def _log_failures(self, report: SweepReport) -> None:
        failing = set()
        for project, queue, exc in report.failed:
            failing.add((project, queue))
            if (project, queue) not in self._failing:
                log.error("sweep of queue %r of project %r failed (the others were swept)", queue, project,
                          exc_info=exc)
        for project, queue in self._failing - failing:
            log.info("queue %r of project %r is swept again", queue, project)
        self._failing = failing

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                report = await self.sweep_once()
            except Exception:  # Redis down or a bug: log, keep going, retry later
                log.exception("sweep failed")
                report = None
            busy = report is not None and report.busy > 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0 if busy else self.interval):
                    await self._stopping.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="ferrymq-sweeper")

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the current pass finish (a pass is bounded work), then cancel if it takes longer.
        Never waits more than ``timeout``: a stop must not hang a server's shutdown."""
        if self._task is None:
            return
        self._stopping.set()
        task, self._task = self._task, None
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
        if not done:
            log.warning("the sweeper did not stop in time; leaving it")
