"""Delivers push-queue messages to their subscribers.

A pusher loops: it asks the engine which push queues are due, claims their due deliveries (each
under a lease: pushers on several machines never push the same delivery at once, and a pusher
that dies loses nothing), POSTs each one in a task of its own, and reports the outcome through
the engine, which decides what follows (delivered, waiting for a 202's acknowledgement, retry,
error queue). It runs inside ``ferrymq serve`` and alone as ``ferrymq pusher``.

httpx does the HTTP: pooled connections, a timeout per request, no redirects followed, no proxy
from the environment. Every connection goes through the push egress policy (``egress.py``): by
default no loopback, private, link-local or otherwise special address; a refused push is a failed
attempt, logged. The headers a contract sends (IronMQ's ``Iron-Message-Id`` ...) come from the
``headers`` hook; an ``ironmq:///queue`` subscriber is a transfer into that queue of the same
project.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable

import httpx

from .aio import AsyncEngine
from .core import forward_target
from .egress import EgressBackend, EgressPolicy, EgressRefused, EgressTransport, Resolve, system_resolve
from .limits import MAX_TRANSFER_HOPS
from .models import NewMessage, PushDelivery

log = logging.getLogger("ferrymq.pusher")

LEASE_MARGIN = 10.0
"""Seconds a claim outlives the push's own timeout, so a slow but live pusher keeps its lease."""

DROPPED = -1
"""The outcome reported for a forward the pusher drops (past MAX_TRANSFER_HOPS: a loop)."""

Headers = Callable[[PushDelivery], dict[str, str]]


def plain_headers(delivery: PushDelivery) -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=utf-8", **delivery.headers}


class Pusher:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        concurrency: int = 64,
        timeout: float = 60.0,
        headers: Headers = plain_headers,
        idle_poll: float = 0.25,
        busy_poll: float = 0.01,
        egress: EgressPolicy | None = None,
        resolve: Resolve = system_resolve,
    ) -> None:
        """``egress``: what pushes may connect to beyond global addresses (default: nothing
        more); ``resolve``: how host names become addresses (getaddrinfo)."""
        self.engine = engine
        self.concurrency = concurrency
        self.timeout = timeout
        self.headers = headers
        self.idle_poll, self.busy_poll = idle_poll, busy_poll
        self.per_queue = max(1, concurrency // 4)
        """Pushes in flight per queue: a queue whose subscriber hangs holds at most this many
        slots, so deliveries of other queues go on."""
        self.in_flight: set[asyncio.Task[None]] = set()
        self._queue_load: collections.Counter[tuple[str, str]] = collections.Counter()
        self.delivered = 0
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        backend = EgressBackend(egress or EgressPolicy(), resolve)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False,
                                         transport=EgressTransport(backend, limits))
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def push_once(self) -> int:
        """One pass: claim what is due on every due push queue (while slots are free) and start
        pushing it. Returns how many deliveries it started."""
        started = 0
        for project, name in await self.engine.due_push_queues():
            free = min(self.concurrency - len(self.in_flight), self.per_queue - self._queue_load[project, name])
            if free <= 0:
                continue
            claim = await self.engine.queue(project, name).claim_pushes(free, self.timeout + LEASE_MARGIN)
            for delivery in claim.deliveries:
                self._start(delivery)
                started += 1
        return started

    def _start(self, delivery: PushDelivery) -> None:
        where = (delivery.project, delivery.queue)
        self._queue_load[where] += 1
        task = asyncio.create_task(self._deliver(delivery))
        self.in_flight.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self.in_flight.discard(task)
            self._queue_load[where] -= 1
            if not self._queue_load[where]:
                del self._queue_load[where]

        task.add_done_callback(done)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                started = await self.push_once()
            except Exception:  # Redis down or a bug: keep going, try again soon
                log.exception("push pass failed")
                started = 0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.busy_poll if started else self.idle_poll):
                    await self._stopping.wait()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="ferrymq-pusher")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming, give pushes in flight ``timeout`` to finish (an unfinished one is
        pushed again once its lease runs out), close the HTTP client."""
        self._stopping.set()
        tasks = {t for t in (self._task, *self.in_flight) if t is not None}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        self._task = None
        await self._client.aclose()

    async def _deliver(self, delivery: PushDelivery) -> None:
        code, error = await self._push(delivery)
        try:
            await self.engine.queue(delivery.project, delivery.queue).report_push(delivery, code, error)
            self.delivered += 200 <= code < 300
        except Exception:  # the lease runs out and the delivery comes back
            log.exception("could not report a push to %s", delivery.queue)

    async def _push(self, delivery: PushDelivery) -> tuple[int, str]:
        """(HTTP status, error text); status 0 when the subscriber did not answer."""
        target = forward_target(delivery.url)
        try:
            if target is not None:
                return await self._forward(delivery, target)
            response = await self._client.post(delivery.url, content=delivery.body, headers=self.headers(delivery))
            error = "" if 200 <= response.status_code < 300 else f"{response.status_code} {response.reason_phrase}"
            return response.status_code, error
        except httpx.TimeoutException:
            return 0, f"no answer within {self.timeout:g} s"
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, EgressRefused):
                log.warning("push of queue %r of project %r to %s %s", delivery.queue, delivery.project,
                            delivery.url, exc.__cause__)
                return 0, str(exc.__cause__)
            return 0, f"{type(exc).__name__}: {exc}"
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # e.g. the forward target refused the message
            return 0, str(exc)

    async def _forward(self, delivery: PushDelivery, target: str) -> tuple[int, str]:
        """An ``ironmq:///target`` subscriber: a transfer into that queue, one hop more."""
        if delivery.hops >= MAX_TRANSFER_HOPS:
            return DROPPED, f"dropped: forwarded {delivery.hops} times already (a forwarding loop?)"
        message = NewMessage(delivery.body, content_type=delivery.content_type)
        await self.engine.queue(delivery.project, target).forward(message, delivery.hops + 1)
        return 200, ""
