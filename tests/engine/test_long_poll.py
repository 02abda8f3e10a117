"""Long polling through the asyncio engine and its one-per-process notifier (real Redis).
Waits are short (well under a second); nothing sleeps to let time pass for the engine."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, DeliveryPaused, NewMessage, RedisClock
from ferrymq.engine.autopipeline import KEPT_CONNECTIONS


@pytest.fixture
async def producer(redis_url):
    """A second engine with its own connection: another process, as far as Redis can tell."""
    client = aioredis.Redis.from_url(redis_url)
    yield AsyncEngine(client, clock=RedisClock())
    await client.aclose()


@pytest.fixture
async def consumer(redis_url):
    # A small blocking pool, as the server uses: long polls must not need a connection each.
    pool = aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=20, timeout=5, client_name="lp-consumer")
    client = aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool
    await client.flushall()
    engine = AsyncEngine(client, clock=RedisClock())
    yield engine
    await engine.aclose()
    await client.aclose()


async def script_calls(client) -> int:
    stats = await client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("fcall", "evalsha", "eval"))


async def sorted_set_reads(client) -> int:
    stats = await client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k.startswith(("cmdstat_zrange", "cmdstat_zrangebyscore")))


async def writes(client) -> int:
    stats = await client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k.startswith(("cmdstat_hset", "cmdstat_hdel", "cmdstat_rpush")))


async def test_a_waiting_reserve_returns_as_soon_as_another_client_puts(consumer, producer):
    waiting = asyncio.create_task(consumer.queue("p", "q").reserve(wait=5))
    await asyncio.sleep(0.05)  # let it park
    put_at = time.monotonic()
    await producer.queue("p", "q").put(["hello"])
    [message] = await asyncio.wait_for(waiting, 2)
    latency = time.monotonic() - put_at
    assert message.body == b"hello"
    assert latency < 0.1, f"woke {latency * 1000:.1f} ms after the put"


async def test_a_wait_with_nothing_to_deliver_returns_empty_after_the_wait(consumer):
    started = time.monotonic()
    assert await consumer.queue("p", "q").reserve(wait=0.3) == []
    assert 0.28 <= time.monotonic() - started < 1.0


async def test_a_wait_wakes_when_a_delayed_message_becomes_due(consumer, producer):
    await producer.queue("p", "q").put([NewMessage("later", delay=0.2)])
    started = time.monotonic()
    [message] = await consumer.queue("p", "q").reserve(wait=3)
    assert message.body == b"later"
    assert 0.15 <= time.monotonic() - started < 1.0


async def test_a_wait_wakes_when_a_reservation_lapses(consumer, producer):
    q = producer.queue("p", "q")
    await q.put([NewMessage("x", timeout=0.2)])
    [first] = await q.reserve()
    [again] = await consumer.queue("p", "q").reserve(wait=3)
    assert again.id == first.id and again.reserved_count == 2


async def test_a_wait_past_an_expiry_still_wakes_for_the_delayed_message_after_it(consumer, producer):
    """The waiter's hint may come early (an expiry counts as a moment to look again): it takes
    one more look, then sleeps until the delayed message is due, without spinning."""
    q = producer.queue("p", "q")
    await q.put([NewMessage("gone", delay=0.6, expires_in=0.1), NewMessage("later", delay=0.3)])
    calls = await script_calls(consumer.client)
    started = time.monotonic()
    [message] = await consumer.queue("p", "q").reserve(wait=3)
    assert message.body == b"later"
    assert 0.25 <= time.monotonic() - started < 1.0
    assert await script_calls(consumer.client) - calls <= 6


async def test_polls_of_an_idle_queue_read_no_sorted_set_once_one_found_nothing_due(consumer):
    """An empty reserve answers its wake-up hint from the queue's next moment of maintenance;
    the first poll after that moment passed recomputes it, and the polls after it read nothing."""
    q = consumer.queue("p", "q")
    await q.put([NewMessage("x", timeout=0.05)])
    [m] = await q.reserve()
    await q.delete_message(m.id, m.reservation_id)
    await asyncio.sleep(0.06)  # the deleted message's deadline passes: maintenance is due
    assert await q.reserve() == []
    before = await sorted_set_reads(consumer.client)
    for _ in range(5):
        assert await q.reserve() == []
    assert await sorted_set_reads(consumer.client) == before


async def test_polls_of_an_idle_queue_write_nothing_and_the_next_put_is_delivered(consumer, producer):
    """An empty reserve that found nothing due and popped nothing changed nothing: it writes
    nothing (not even the queue's state), and the queue still works after many such polls."""
    q = consumer.queue("p", "idle")
    await q.put(["first"])
    [m] = await q.reserve()
    await q.delete_message(m.id, m.reservation_id)
    assert await q.reserve() == []  # the first empty poll resets the FIFO's bookkeeping
    before = await writes(consumer.client)
    for _ in range(5):
        assert await q.reserve() == []
    assert await writes(consumer.client) == before
    await producer.queue("p", "idle").put(["second"])
    [m] = await q.reserve()
    assert m.body == b"second" and m.reserved_count == 1


async def test_one_message_wakes_one_waiter_of_many(consumer, producer):
    waiters = [asyncio.create_task(consumer.queue("p", "q").reserve(wait=0.6)) for _ in range(10)]
    await asyncio.sleep(0.1)
    await producer.queue("p", "q").put(["only"])
    results = await asyncio.gather(*waiters)
    assert sorted(len(r) for r in results) == [0] * 9 + [1]


async def test_idle_waiters_cost_redis_nothing_while_they_wait(consumer):
    admin = consumer.client
    waiters = [asyncio.create_task(consumer.queue("p", f"q{i % 5}").reserve(wait=1.5)) for i in range(50)]
    await asyncio.sleep(0.4)  # all parked after their first look(s)
    before = await script_calls(admin)
    await asyncio.sleep(0.8)
    during = await script_calls(admin) - before
    assert during == 0, f"{during} script calls while 50 requests waited"
    assert [len(r) for r in await asyncio.gather(*waiters)] == [0] * 50


async def test_a_hundred_waiters_share_a_pool_of_twenty_connections(consumer):
    waiters = [asyncio.create_task(consumer.queue("p", "q").reserve(wait=1.5)) for _ in range(100)]
    await asyncio.sleep(0.8)
    pool = consumer.client.connection_pool
    # The notifier's pub/sub connection and those the auto-pipeline keeps: none per waiter.
    assert len(pool._in_use_connections) <= 1 + KEPT_CONNECTIONS
    clients = [c for c in await consumer.client.client_list() if c["name"] == "lp-consumer"]
    assert not [c for c in clients if "b" in c["flags"]], "a client is blocked in a BLPOP-style wait"
    assert sum(int(c["sub"]) > 0 for c in clients) == 1  # one subscriber connection for all
    await asyncio.gather(*waiters)


async def test_a_paused_queue_waits_then_delivers_when_resumed(consumer, producer):
    q = producer.queue("p", "q")
    await q.create(paused=True)
    await q.put(["x"])
    waiting = asyncio.create_task(consumer.queue("p", "q").reserve(wait=3))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    await q.update(paused=False)
    [message] = await asyncio.wait_for(waiting, 2)
    assert message.body == b"x"


async def test_a_paused_queue_raises_once_the_wait_is_over(consumer):
    q = consumer.queue("p", "q")
    await q.create(paused=True)
    with pytest.raises(DeliveryPaused):
        await q.reserve(wait=0.2)


async def test_closing_the_engine_ends_long_polls_with_what_they_have(consumer):
    waiting = asyncio.create_task(consumer.queue("p", "q").reserve(wait=10))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await consumer.aclose()
    assert await asyncio.wait_for(waiting, 2) == []
    assert time.monotonic() - started < 1


async def test_a_waiter_cancelled_right_after_its_wake_up_passes_it_on(consumer):
    notifier, channel = consumer.notifier, "fmq:test-channel"
    assert await notifier.wait(channel, 1) is True  # first wait only subscribes
    first = asyncio.create_task(notifier.wait(channel, 2))
    second = asyncio.create_task(notifier.wait(channel, 2))
    await asyncio.sleep(0.05)
    # A wake-up for one message reaches the first waiter, which is cancelled (its client went
    # away) before it could look: the wake-up must go to the next one.
    notifier._dispatch({"type": "message", "channel": channel.encode(), "data": b"1"})
    first.cancel()
    assert await asyncio.wait_for(second, 1) is True


async def test_a_channel_that_failed_to_subscribe_while_redis_was_down_subscribes_once_it_is_back(redis_servers):
    server = redis_servers()
    client = aioredis.Redis.from_url(server.url)
    notifier, channel = AsyncEngine(client).notifier, "fmq:test-channel"
    try:
        server.kill()
        with pytest.raises(redis.ConnectionError):
            await notifier.wait(channel, 1)
        server.restart()
        started = time.monotonic()
        assert await notifier.wait(channel, 1) is True  # subscribes now, and says look again
        assert time.monotonic() - started < 1.0, "it waited for a subscription nobody asked for"
        waiting = asyncio.create_task(notifier.wait(channel, 4))
        await asyncio.sleep(0.1)
        await client.publish(channel, 1)
        assert await asyncio.wait_for(waiting, 2) is True
    finally:
        await notifier.close()
        await client.aclose()


async def test_a_poll_that_pops_only_ghosts_writes_what_it_popped(consumer):
    """Ready messages deleted by id leave ghosts in the FIFO; an empty reserve that pops them has
    changed the queue (it must write), unlike an idle poll."""
    q = consumer.queue("p", "ghosts")
    ids = await q.put(["a", "b"])
    assert await q.delete_messages(ids) == [True, True]
    assert await q.reserve() == []
    [stats] = [s for s in await consumer.stats("p") if s.name == "ghosts"]
    assert stats.ready == 0
    await q.put(["c"])
    [m] = await q.reserve()
    assert m.body == b"c"
