"""Long-poll wake-ups: one pub/sub connection per process, shared by all its waiting requests.

Scripts that make messages ready PUBLISH their count on the queue's channel. A waiting reserve
parks on a future here, not on a Redis connection, and idle waiters cost Redis nothing. A
wake-up for k messages wakes the k longest-waiting requests of this process (no thundering
herd). Pub/sub can lose messages while the connection is down, so after a reconnect every waiter
is woken to look again. Channels nobody waits on are unsubscribed after ``idle_ttl`` seconds.

On Redis Cluster (``redis.asyncio.RedisCluster``, which has no ``pubsub()``) the notifier opens a
plain connection to one node of the cluster: a classic PUBLISH, also from inside a script,
reaches every node through the cluster bus, so one node hears every queue. If that node fails,
the notifier moves to the next one and subscribes again. (Sharded pub/sub would spare the bus
but needs Redis 7 and a connection per shard; the wake-ups are tiny and one per API call.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any

import redis.asyncio as aioredis

_CONFIRM_TIMEOUT = 5.0
_RECONNECT_BACKOFF = 0.5


class Notifier:
    def __init__(self, client: Any, *, idle_ttl: float = 30.0) -> None:
        self._client = client
        self._idle_ttl = idle_ttl
        self._pubsub: Any = None
        self._node_client: aioredis.Redis | None = None
        """Cluster only: the plain client to one node that holds the subscriptions."""
        self._next_node = 0
        self._connecting = asyncio.Lock()
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[str, deque[asyncio.Future[bool]]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._idle_since: dict[str, float] = {}
        self._closed = False

    async def wait(self, channel: str, timeout: float) -> bool | None:
        """Wait up to ``timeout`` seconds for a wake-up on ``channel``: True if woken, False if
        the time ran out, None if the notifier is closing (the caller returns what it has).

        Right after subscribing it returns True at once: the caller must look again, because a
        message may have become ready before the subscription was active."""
        if self._closed:
            return None
        if not await self._subscribe(channel):
            return True
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        queue = self._waiters.setdefault(channel, deque())
        queue.append(waiter)
        self._idle_since.pop(channel, None)
        try:
            async with asyncio.timeout(timeout):
                woken = await asyncio.shield(waiter)
            return None if self._closed else woken
        except TimeoutError:
            return False
        except asyncio.CancelledError:
            if waiter.done():  # woken, then cancelled before it could look: pass the wake-up on
                self._wake(channel, 1)
            raise
        finally:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                self._idle_since[channel] = loop.time()

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiters.values())

    async def close(self) -> None:
        """Wake every waiter (they return what they have) and drop the connection."""
        self._closed = True
        for channel in list(self._waiters):
            self._wake(channel, len(self._waiters[channel]))
        if self._reader is not None:
            # The reader notices _closed within a second; cancel too, but never wait unbounded.
            self._reader.cancel()
            await asyncio.wait({self._reader}, timeout=2.0)
            self._reader = None
        await self._drop_connection()
        self._confirmed.clear()

    @property
    def _on_cluster(self) -> bool:
        return not hasattr(self._client, "pubsub")

    async def _connect(self) -> tuple[Any, aioredis.Redis | None]:
        """A PubSub, and the client to close with it: None for the engine's own client; on a
        cluster, a plain client to the next node in turn."""
        if not self._on_cluster:
            return self._client.pubsub(), None
        await self._client.initialize()  # learns the nodes (no-op once done)
        nodes = self._client.get_nodes()
        node = nodes[self._next_node % len(nodes)]
        self._next_node += 1
        # The node's own connection settings (auth, TLS, timeouts) as the cluster client uses them.
        pool = aioredis.ConnectionPool(connection_class=node.connection_class, **node.connection_kwargs)
        node_client = aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool
        return node_client.pubsub(), node_client

    async def _subscribe_now(self, channel: str) -> None:
        """Subscribe, one caller at a time: redis-py's PubSub opens its connection on the first
        subscribe, and two first subscribes at once would each open one (the reader then hears
        only the last). Connecting awaits on a cluster too: one connection, not one per caller."""
        async with self._connecting:
            if self._pubsub is None:
                self._pubsub, self._node_client = await self._connect()
            await self._pubsub.subscribe(channel)

    async def _drop_connection(self) -> None:
        old = self._pubsub, self._node_client
        self._pubsub = self._node_client = None
        await _close(*old)

    async def _move_to_another_node(self) -> None:
        """Cluster: the node may be gone for good (failover, removal), so subscribe elsewhere.
        The old connection stays in place until the new one exists, so a waiter subscribing
        meanwhile never finds none (its channel is in ``_confirmed`` and is subscribed here)."""
        old = self._pubsub, self._node_client
        self._pubsub, self._node_client = await self._connect()
        await _close(*old)
        if self._confirmed:
            await self._pubsub.subscribe(*self._confirmed)

    async def _subscribe(self, channel: str) -> bool:
        """True if the channel was already subscribed and confirmed."""
        confirmed = self._confirmed.get(channel)
        if confirmed is not None and confirmed.done():
            return True
        if confirmed is None:
            confirmed = self._confirmed[channel] = asyncio.get_running_loop().create_future()
            try:
                await self._subscribe_now(channel)
            except BaseException:  # Redis down: the next waiter must subscribe, not await forever
                self._confirmed.pop(channel, None)
                raise
            if self._reader is None or self._reader.done():
                self._reader = asyncio.create_task(self._read(), name="ferrymq-notifier")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CONFIRM_TIMEOUT):
                await asyncio.shield(confirmed)
        return False

    def _wake(self, channel: str, count: int) -> None:
        for waiter in self._waiters.get(channel, ()):
            if count <= 0:
                break
            if not waiter.done():
                waiter.set_result(True)
                count -= 1

    def _wake_all(self) -> None:
        for channel, queue in self._waiters.items():
            self._wake(channel, len(queue))

    async def _read(self) -> None:
        lost = False
        while not self._closed:
            try:
                if lost and self._on_cluster:
                    await self._move_to_another_node()
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                lost = True
                await asyncio.sleep(_RECONNECT_BACKOFF)
                continue
            if lost:  # wake-ups may have been missed while disconnected
                lost = False
                self._wake_all()
            if message is None:
                await self._unsubscribe_idle()
            else:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        if message["type"] == "subscribe":
            confirmed = self._confirmed.get(channel)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)
        elif message["type"] == "message":
            try:
                count = int(message["data"])
            except (TypeError, ValueError):
                count = 1
            self._wake(channel, max(count, 1))

    async def _unsubscribe_idle(self) -> None:
        now = asyncio.get_running_loop().time()
        idle = [c for c, since in self._idle_since.items() if now - since > self._idle_ttl and not self._waiters.get(c)]
        for channel in idle:
            del self._idle_since[channel]
            self._waiters.pop(channel, None)
            self._confirmed.pop(channel, None)
            await self._pubsub.unsubscribe(channel)


async def _close(*resources: Any) -> None:
    """Close pub/sub objects and clients, each bounded in time (a dead server must not hang us)."""
    for resource in resources:
        if resource is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await resource.aclose()
