"""The asyncio engine's auto-pipeline (engine/autopipeline.py): a big command goes alone and at
once, a small one with its turn; either way an error reply is the caller's value."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ferrymq.engine import AsyncEngine, Unavailable
from ferrymq.engine import autopipeline
from ferrymq.engine.autopipeline import ALONE_WORDS, AutoPipeline


@contextlib.asynccontextmanager
async def pipeline_on_pool(redis_url: str, size: int = 8, pipeline_timeout: float | None = None, **pool_options: Any):
    """An AutoPipeline over a blocking pool of ``size`` connections (whose in-use set the tests
    read), everything closed after."""
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=size, **pool_options)
    client = aioredis.Redis(connection_pool=pool)
    pipeline = AutoPipeline(client, timeout=pipeline_timeout)
    try:
        yield pipeline, client, pool
    finally:
        await pipeline.aclose()
        await client.aclose()
        await pool.disconnect()  # a pool given to the client is not closed by it


async def test_big_and_small_puts_of_one_turn_all_land(aengine):
    q = aengine.queue("p", "q")
    big = [f"b{i}" for i in range(100)]
    ids = await asyncio.gather(q.put(big), q.put(["s"]), q.put(big))
    assert [len(x) for x in ids] == [100, 1, 100] and len(set(sum(ids, []))) == 201
    bodies: list[bytes] = []
    while taken := await q.reserve(100):
        bodies += [m.body for m in taken]
    assert sorted(bodies) == sorted([b.encode() for b in big] * 2 + [b"s"])


async def test_an_error_reply_is_the_value_of_a_big_and_of_a_small_command(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    pipeline = AutoPipeline(client)
    try:
        big = ("FCALL", "no-such-function", 0, *["a"] * ALONE_WORDS)
        small = ("FCALL", "no-such-function", 0)
        replies = await asyncio.gather(pipeline.call(big), pipeline.call(small), pipeline.call(("PING",)))
        assert isinstance(replies[0], ResponseError) and isinstance(replies[1], ResponseError)
        assert replies[2] is True
    finally:
        await pipeline.aclose()
        await client.aclose()


async def test_a_command_sent_alone_does_not_hold_up_its_turn(redis_url):
    # A reserve of 100 is few words but much Redis time; sent alone (Eval.messages), the small
    # commands of its turn do not wait behind it. A blocking pop stands in for the slow call:
    # pipelined with it, the PING would wait until the pop returns.
    client = aioredis.Redis.from_url(redis_url)
    pipeline = AutoPipeline(client)
    try:
        slow = asyncio.ensure_future(pipeline.call(("BLPOP", "autopipeline-alone", 10), alone=True))
        ping = asyncio.ensure_future(pipeline.call(("PING",)))
        done, _ = await asyncio.wait({slow, ping}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {ping} and ping.result() is True
        await client.lpush("autopipeline-alone", "x")
        assert list(await slow) == [b"autopipeline-alone", b"x"]
    finally:
        await pipeline.aclose()
        await client.aclose()


async def test_a_redis_that_stops_answering_fails_every_call_as_unavailable_in_time():
    # A server that takes connections and commands and never answers: each call, pipelined with
    # its turn or sent alone (a reserve of 100, a put of 100), fails within command_timeout.
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1 << 16):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    client = aioredis.Redis(port=server.sockets[0].getsockname()[1])
    engine = AsyncEngine(client, command_timeout=0.3)
    q = engine.queue("p", "q")
    try:
        started = time.monotonic()
        calls = [q.put(["one"]), q.reserve(), q.reserve(100), q.put([f"m{i}" for i in range(100)])]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(result, Unavailable) for result in results), results
        assert time.monotonic() - started < 2
    finally:
        await engine.aclose()
        await client.aclose()
        server.close()


async def test_a_slow_release_of_the_connection_neither_fails_the_call_nor_loses_the_connection(redis_url, monkeypatch):
    # The timer bounds the round trip only: returning the connection to the pool may wait for
    # the pool's lock, and cancelled there the connection would stay taken for ever.
    monkeypatch.setattr(autopipeline, "KEPT_CONNECTIONS", 0)  # every round trip gives it back
    async with pipeline_on_pool(redis_url, 4, pipeline_timeout=0.2) as (pipeline, _, pool):
        release = pool.release

        async def slow_release(connection):
            await asyncio.sleep(0.3)
            await release(connection)

        pool.release = slow_release
        assert await pipeline.call(("PING",)) is True
        assert await pipeline.call(("PING",), alone=True) is True
        await pipeline.aclose()
        assert len(pool._in_use_connections) == 0


async def test_a_connection_is_kept_between_round_trips_and_given_back_on_close(redis_url):
    async with pipeline_on_pool(redis_url, 4) as (pipeline, _, pool):
        first = await pipeline.call(("CLIENT", "ID"))
        assert await pipeline.call(("CLIENT", "ID"), alone=True) == first  # the same connection
        assert len(pool._in_use_connections) == 1  # kept by the pipeline, not in the pool
        await pipeline.aclose()
        assert len(pool._in_use_connections) == 0


async def test_a_kept_connection_that_redis_closed_is_not_used_again(redis_url):
    # Redis may close an idle connection (its `timeout`, CLIENT KILL, a restart): the next round
    # trip goes on a connection of the pool instead, and succeeds.
    async with pipeline_on_pool(redis_url) as (pipeline, client, _):
        killed = await pipeline.call(("CLIENT", "ID"))
        assert await client.client_kill_filter(_id=killed) == 1
        await asyncio.sleep(0.05)  # for the loop to read the close (loopback: well under a ms)
        replies = await asyncio.gather(pipeline.call(("CLIENT", "ID")), pipeline.call(("PING",)))
        assert replies[0] != killed and replies[1] is True


async def test_a_kept_connection_that_was_reset_is_not_used_again(redis_url):
    # A reset (a load balancer dropping an idle connection, a keepalive timeout) leaves no EOF,
    # only an error on the stream: the next round trip still goes on a sound connection.
    host, port = redis_url.removeprefix("redis://").split("/")[0].split(":")
    facing: list[asyncio.StreamWriter] = []
    upstream: list[asyncio.StreamWriter] = []

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        facing.append(client_writer)
        reader, writer = await asyncio.open_connection(host, int(port))
        upstream.append(writer)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(1 << 16):
                sink.write(data)
        await asyncio.gather(pump(client_reader, writer), pump(reader, client_writer), return_exceptions=True)

    proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
    client = aioredis.Redis(port=proxy.sockets[0].getsockname()[1])
    pipeline = AutoPipeline(client, timeout=2)
    try:
        assert await pipeline.call(("PING",)) is True
        for writer in facing:  # RST, not FIN
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        await asyncio.sleep(0.05)  # for the loop to see the reset
        assert await pipeline.call(("PING",)) is True
    finally:
        await pipeline.aclose()
        await client.aclose()
        proxy.close()
        for writer in facing + upstream:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for w in facing + upstream), return_exceptions=True)
        await proxy.wait_closed()


async def test_a_closed_kept_connection_goes_back_to_the_pool_even_when_its_caller_is_cancelled(redis_url):
    # Giving a dead kept connection back may wait for the pool's lock: if the caller
    # was cancelled there (or a timer struck), the pool would lose the connection for good.
    async with pipeline_on_pool(redis_url, pipeline_timeout=0.2, timeout=1) as (pipeline, client, pool):
        killed = await pipeline.call(("CLIENT", "ID"))
        await client.client_kill_filter(_id=killed)
        await asyncio.sleep(0.05)  # for the loop to read the close

        async def hold_the_pool() -> None:
            async with pool._condition:
                await asyncio.sleep(0.4)

        holder = asyncio.ensure_future(hold_the_pool())
        await asyncio.sleep(0)
        call = asyncio.ensure_future(pipeline.call(("PING",), alone=True))  # in this task: cancellable
        await asyncio.sleep(0.1)
        call.cancel()
        await asyncio.gather(call, holder, return_exceptions=True)
        await pipeline.aclose()
        assert len(pool._in_use_connections) == 0


async def test_a_small_pool_keeps_at_most_a_quarter_of_its_connections(redis_url):
    for size, kept in ((4, 1), (3, 0)):
        async with pipeline_on_pool(redis_url, size) as (pipeline, _, pool):
            await asyncio.gather(*(pipeline.call(("PING",), alone=True) for _ in range(size)))
            assert len(pool._in_use_connections) == kept


async def test_a_round_trip_that_ends_after_close_gives_its_connection_back(redis_url):
    async with pipeline_on_pool(redis_url) as (pipeline, _, pool):
        slow = asyncio.ensure_future(pipeline.call(("BLPOP", "autopipeline-closing", 0.2), alone=True))
        await asyncio.sleep(0.05)
        await pipeline.aclose()
        assert await slow is None
        assert len(pool._in_use_connections) == 0


async def test_a_clients_socket_timeout_bounds_the_wait_when_the_pipeline_sets_none(redis_url):
    client = aioredis.Redis.from_url(redis_url, socket_timeout=0.2)
    pipeline = AutoPipeline(client)  # no timeout of its own
    try:
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await pipeline.call(("BLPOP", "autopipeline:nothing", 2))
        assert time.monotonic() - started < 1.5
    finally:
        await pipeline.aclose()
        await client.aclose()


async def test_a_burst_of_calls_in_one_turn_takes_no_more_connections_than_are_kept(redis_url):
    client = aioredis.Redis.from_url(redis_url, max_connections=8)  # raises beyond 8 connections
    pipeline = AutoPipeline(client, timeout=5)
    try:
        replies = await asyncio.gather(*(pipeline.call(("PING",)) for _ in range(200)), return_exceptions=True)
        assert replies == [True] * 200
    finally:
        await pipeline.aclose()
        await client.aclose()


async def test_a_cluster_node_that_stopped_answering_does_not_hold_aclose(redis_clusters, clock):
    """On a cluster each caller has its own timer; the round trips it left behind are bounded too,
    so closing the engine (the server's shutdown) does not wait for a node that stopped answering
    (a partition, a frozen machine) to come back."""
    cluster = redis_clusters()
    client = aioredis.RedisCluster.from_url(cluster.url)
    engine = AsyncEngine(client, clock=clock, command_timeout=0.3)
    closed = None
    try:
        q = engine.queue("p", "q")
        await q.put(["warm-up"])
        for node in cluster.nodes:
            os.kill(node.process.pid, signal.SIGSTOP)
        for i in range(3):
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await q.put([f"m{i}"])
            assert time.monotonic() - started < 1
        closed = asyncio.ensure_future(engine.aclose())
        done, _ = await asyncio.wait({closed}, timeout=2)
        assert done == {closed}
    finally:
        for node in cluster.nodes:
            os.kill(node.process.pid, signal.SIGCONT)
        if closed is not None:
            await asyncio.wait_for(asyncio.shield(closed), 10)
        await client.aclose()
