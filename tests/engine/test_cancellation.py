"""Cancelling a task must cancel it, even mid-command: shutdown, client disconnects and the
sweeper's stop all rely on it. Two ways to lose it, both measured: redis-py 8.0 and 8.1 (hence
the pin below 8), and any client with ``socket_timeout`` on Python 3.11 (redis-py then sends
through ``asyncio.wait_for``, whose race drops cancellations; hence no socket_timeout in the
server's client, which this test builds exactly as the server does, for a single Redis and for
a Redis Cluster)."""

from __future__ import annotations

import asyncio
import random

import pytest

from ferrymq.engine import AsyncEngine
from ferrymq.http.app import redis_client
from ferrymq.http.settings import Settings


@pytest.mark.parametrize("redis_kind", ["single", "cluster"])
async def test_cancelling_a_task_mid_command_cancels_it(redis_kind, request):
    url = request.getfixturevalue("redis_url") if redis_kind == "single" else request.getfixturevalue("cluster").url
    settings = Settings(redis_url=url)
    client = redis_client(settings)
    engine = AsyncEngine(client, command_timeout=settings.command_timeout)
    q = engine.queue("p", "cancel")
    rng = random.Random(7)
    swallowed = 0
    for _ in range(200):
        async def work():
            for _ in range(50):
                await q.peek(1)

        task = asyncio.create_task(work())
        await asyncio.sleep(rng.random() * 0.002)
        task.cancel()
        try:
            await asyncio.wait_for(task, 5)
            swallowed += 1
        except asyncio.CancelledError:
            pass
    await client.aclose()
    assert swallowed == 0, f"{swallowed} of 200 cancellations were swallowed by the Redis client"
