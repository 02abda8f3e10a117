"""The sweeper maintains queues nobody reads: expiry, lapsed reservations, dead letters."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, NewMessage, Sweeper


def test_sweep_expires_messages_of_queues_nobody_reads(real_engine, keys_holding_messages, clock):
    for name in ("a", "b"):
        real_engine.queue("p", name).put([NewMessage("x", expires_in=5), NewMessage("y", expires_in=5, delay=1)])
    real_engine.queue("other", "c").put([NewMessage("z", expires_in=5)])
    clock.advance(5)
    report = real_engine.sweep()
    assert report.queues == 3 and report.busy == 0
    for project, name in (("p", "a"), ("p", "b"), ("other", "c")):
        assert keys_holding_messages(project, name) == ["meta"]


def test_sweep_dead_letters_lapsed_reservations_of_idle_queues(real_engine, clock):
    q = real_engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead", timeout=5)
    q.put(["x"])
    q.reserve()
    clock.advance(5)
    assert real_engine.sweep().transfers == 1
    assert [m.body for m in real_engine.queue("p", "dead").peek()] == [b"x"]


def test_sweep_unlists_a_queue_whose_data_is_gone(real_engine, redis_client):
    info = real_engine.queue("p", "q").create()
    redis_client.delete("fmq:{p/q}:meta")  # as if a crash hit between dropping and unlisting
    real_engine.sweep()
    assert real_engine.count_queues("p") == 0
    assert real_engine.find_queue("p", info.id) is None


def test_sweep_of_a_busy_queue_reports_more_work(real_engine, clock):
    q = real_engine.queue("p", "q")
    for start in range(0, 1200, 100):
        q.put([NewMessage(str(i), expires_in=1) for i in range(start, start + 100)])
    clock.advance(1)
    assert real_engine.sweep().busy == 1
    while real_engine.sweep().busy:
        pass
    assert q.info().size == 0


async def test_one_sweeper_at_a_time_holds_the_lease(redis_url, clock):
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    first = Sweeper(AsyncEngine(client, clock=clock), lease_ttl=0.3)
    second = Sweeper(AsyncEngine(client, clock=clock), lease_ttl=0.3)
    assert await first.sweep_once() is not None
    assert await second.sweep_once() is None  # first holds the lease
    assert await first.sweep_once() is not None  # renews its own
    await client.delete("fmq:lease:sweeper")  # first died and its lease ran out
    assert await second.sweep_once() is not None
    await client.aclose()


async def test_a_running_sweeper_expires_messages_in_the_background(redis_url, clock):
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    engine = AsyncEngine(client, clock=clock)
    [message_id] = await engine.queue("p", "q").put([NewMessage("x", expires_in=1)])
    clock.advance(1)
    sweeper = Sweeper(engine, interval=0.01)
    sweeper.start()
    for _ in range(200):
        if not await client.hexists("fmq:{p/q}:msg", message_id):
            break
        await asyncio.sleep(0.01)
    await sweeper.stop()
    assert not await client.hexists("fmq:{p/q}:msg", message_id)
    await client.aclose()
