"""Long polls through the asyncio engine (the server's path): how soon a waiting reserve gets a
message after it is put, and what 1,000 idle long-pollers cost Redis."""

from __future__ import annotations

import asyncio
import random
import time

import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine

from .harness import BODY, RedisServer, Results, percentile

SECTION = "longpoll"
IDLE_POLLERS = 1000


async def wake_latencies(server: RedisServer, samples: int) -> list[float]:
    """ms from the start of a put to the waiting reserve returning the message."""
    client = aioredis.Redis(port=server.port)
    engine = AsyncEngine(client)
    q = engine.queue("bench", "wake")
    await q.ensure()
    out: list[float] = []
    try:
        for _ in range(samples):
            waiting = asyncio.create_task(q.reserve(1, wait=10))
            await asyncio.sleep(random.uniform(0.005, 0.015))  # parked on the notifier by now
            started = time.perf_counter()
            await q.put([BODY])
            [message] = await waiting
            out.append((time.perf_counter() - started) * 1000)
            await q.delete_message(message.id, message.reservation_id)
    finally:
        await engine.aclose()
        await client.aclose()
    return out


async def idle_ops(server: RedisServer, pollers: int, seconds: float) -> float:
    """Redis commands per second while ``pollers`` reserves wait on as many empty queues (the
    INFO calls that measure it are taken off)."""
    pool = aioredis.BlockingConnectionPool(port=server.port, max_connections=64)
    client = aioredis.Redis(connection_pool=pool)
    engine = AsyncEngine(client)
    queues = [engine.queue("bench", f"idle{i}") for i in range(pollers)]
    await asyncio.gather(*(q.ensure() for q in queues))
    waits = [asyncio.create_task(q.reserve(1, wait=30)) for q in queues]
    try:
        await asyncio.sleep(2)  # every poller has looked once and parked
        before, started = server.commands(), time.perf_counter()
        await asyncio.sleep(seconds)
        after, elapsed = server.commands(), time.perf_counter() - started
        return (after - before - 1) / elapsed
    finally:
        await engine.aclose()  # the waits return at once
        await asyncio.gather(*waits, return_exceptions=True)
        await client.aclose()
        await pool.disconnect()


def run(server: RedisServer, results: Results, rounds: int, samples: int, idle_seconds: float) -> None:
    for _ in range(rounds):
        server.flush()
        latencies = asyncio.run(wake_latencies(server, samples))
        results.add("longpoll/wake", SECTION, "ferrymq engine (asyncio)", "long-poll wake latency",
                    f"{samples} puts", {"p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)})
        server.flush()
        ops = asyncio.run(idle_ops(server, IDLE_POLLERS, idle_seconds))
        results.add("longpoll/idle", SECTION, "ferrymq engine (asyncio)", f"{IDLE_POLLERS:,} idle long-pollers",
                    f"{IDLE_POLLERS:,} queues", {"ops_per_s": ops})
