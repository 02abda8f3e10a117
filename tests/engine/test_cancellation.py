"""Cancelling a task must cancel it, even mid-command: shutdown, client disconnects and the
sweeper's stop all rely on it. (redis-py 8.0 and 8.1 swallow most such cancellations; this test
fails on them, which is why pyproject.toml pins redis below 8.)"""

from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine


async def test_cancelling_a_task_mid_command_cancels_it(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    engine = AsyncEngine(client)
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
