"""A script call goes to Redis at most once: a connection that fails once the command was sent
(its reply lost, a timeout) is the caller's ``Unavailable``, never a second send, which stored a
put twice. Sending again is safe only before the command left whole (Redis runs no command it
did not receive whole). Checked on both engines, on the server's own clients, through a relay
that cuts the connection as a reply arrives."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
from collections.abc import Iterator
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode

from ferrymq.engine import AsyncEngine, Engine, Unavailable
from ferrymq.engine.direct import DirectCalls
from ferrymq.http.connect import redis_client
from ferrymq.http.settings import Settings


class ReplyCutter:
    """A TCP relay to a Redis (threads) that, once ``armed``, closes the client's connection as the
    next reply arrives: the command ran, its reply is lost (a reset, a failing load balancer)."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.armed = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, replies: bool) -> None:
        try:
            while data := source.recv(65536):
                if replies and self.armed:
                    self.armed = False
                    for end in (sink, source):
                        end.shutdown(socket.SHUT_RDWR)
                    break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            end.close()

    def close(self) -> None:
        self.listener.close()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@contextlib.contextmanager
def queue_through_cutter(url: str, clock: Any, **options: Any) -> Iterator[tuple[Any, ReplyCutter, redis.Redis]]:
    """A queue of a sync engine whose client (``redis.Redis()``: three retries by default)
    reaches the Redis at ``url`` (emptied first) through a ReplyCutter; created, its scripts
    loaded. Yields the queue, the cutter and the client."""
    cutter = ReplyCutter(port_of(url))
    client = redis.Redis(port=cutter.port)
    try:
        client.flushall()
        q = Engine(client, clock=clock, **options).queue("p", "q")
        q.put(["warm-up"])
        q.delete_message(q.reserve(1)[0].id)
        yield q, cutter, client
    finally:
        client.close()
        cutter.close()


def put_once(q: Any, cutter: ReplyCutter) -> list[bytes]:
    """A put whose reply is cut off, then what the queue holds."""
    cutter.armed = True
    try:
        q.put(["once"])
    except Unavailable:
        pass  # told it may not have been stored: fine, as long as it is not stored twice
    return [m.body for m in q.reserve(10)]


def test_a_sync_put_whose_reply_was_lost_is_not_sent_again(redis_url, clock):
    """The sync engine's calls on its kept connection (direct.py)."""
    with queue_through_cutter(redis_url, clock) as (q, cutter, _):
        assert put_once(q, cutter) == [b"once"]


def test_a_sync_put_beside_another_threads_call_is_not_sent_again(redis_url, clock):
    """While another thread's call holds the kept connection, a call goes on a connection of the
    pool, under the same rule."""
    with queue_through_cutter(redis_url, clock) as (q, cutter, client):
        with DirectCalls.of(client)._lock:  # (as another thread's call on the kept connection holds it)
            q.info()  # (a connection of the pool is connected: the cut falls on the put's reply)
            assert put_once(q, cutter) == [b"once"]


async def test_the_servers_cluster_client_does_not_send_a_put_again(redis_clusters, clock, busy_redis):
    """redis-py's cluster client sends a call again when its connection fails, by default: the
    server's is built with no retries (the next call still finds a failed node afresh)."""
    cluster = redis_clusters()
    client = redis_client(Settings(redis_url=cluster.url))
    engine = AsyncEngine(client, clock=clock, command_timeout=10)
    try:
        q = engine.queue("p", "q")
        await q.put(["warm-up"])
        node = client.get_node_from_key("fmq:{p/q}:meta")
        async with busy_redis(f"redis://127.0.0.1:{node.port}", 1.0):
            put = asyncio.ensure_future(q.put(["once"]))
            await asyncio.sleep(0.2)  # sent, waiting on the busy node
            for connection in node._connections:  # its connection is reset
                if connection._writer is not None:
                    connection._writer.transport.abort()
            try:
                await put
            except Unavailable:
                pass
        assert await client.llen("fmq:{p/q}:ready") == 2  # "warm-up" and "once", not "once" twice
        assert await q.put(["after"])  # the next call goes through
    finally:
        await engine.aclose()
        await client.aclose()
        # redis-py's cluster client replaces the object of a node whose connection failed and
        # leaves the old one's connections to the garbage collector (with a warning): closed here.
        for each in [obj for obj in gc.get_objects() if isinstance(obj, ClusterNode)]:
            await each.disconnect()


def test_a_sync_write_acknowledged_by_a_replica_is_not_sent_again(replicated_redis, clock):
    """A write that waits for replicas goes with its WAIT in one round trip: at most once too."""
    with queue_through_cutter(replicated_redis.primary.url, clock, min_replicas_ack=1) as (q, cutter, _):
        assert put_once(q, cutter) == [b"once"]


async def test_an_async_write_acknowledged_by_a_replica_is_not_sent_again(replicated_redis, clock):
    cutter = ReplyCutter(port_of(replicated_redis.primary.url))
    client = aioredis.Redis(port=cutter.port)  # (three retries by default, as redis.Redis())
    engine = AsyncEngine(client, clock=clock, command_timeout=5, min_replicas_ack=1)
    try:
        q = engine.queue("p", "acked")
        await q.put(["warm-up"])
        await q.delete_message((await q.reserve(1))[0].id)
        cutter.armed = True
        try:
            await q.put(["once"])
        except Unavailable:
            pass
        assert [m.body for m in await q.reserve(10)] == [b"once"]
    finally:
        await engine.aclose()
        await client.aclose()
        cutter.close()
