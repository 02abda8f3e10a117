"""Many consumers at once, consumers that vanish, and queues of hundreds of thousands of
messages (real Redis only)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, Engine, FakeClock, NewMessage

pytestmark = pytest.mark.slow
MESSAGES = 20_000


def fill(queue, count: int, **options) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 100):
        ids += queue.put([NewMessage(f"m{i}", **options) for i in range(start, min(start + 100, count))])
    return ids


def test_eight_threads_delete_every_message_exactly_once(redis_url, redis_client):
    ids = fill(Engine(redis_client).queue("p", "work"), MESSAGES)
    deleted: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[BaseException] = []

    def consume(seed: int) -> None:
        rng = random.Random(seed)
        client = redis.Redis.from_url(redis_url)
        q = Engine(client).queue("p", "work")
        try:
            while batch := q.reserve(rng.choice([1, 3, 10, 25]), timeout=60):
                settled = q.settle(deletes=[(m.id, m.reservation_id) for m in batch])
                with lock:
                    deleted.update(m.id for m, s in zip(batch, settled.deleted) if s == "ok")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=consume, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert set(deleted) == set(ids) and set(deleted.values()) == {1}
    info = Engine(redis_client).queue("p", "work").info()
    assert (info.size, info.counters["deleted"], info.counters["reserved"]) == (0, MESSAGES, MESSAGES)


async def test_eight_async_consumers_with_vanishing_ones_lose_nothing(redis_url):
    """Consumers sometimes vanish with their batch (no delete). Once the reservations lapse,
    those messages are delivered again; every message is deleted exactly once in the end."""
    clock = FakeClock()
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    engine = AsyncEngine(client, clock=clock)
    q = engine.queue("p", "work")
    ids = []
    for start in range(0, MESSAGES, 100):
        ids += await q.put([f"m{i}" for i in range(start, start + 100)])
    deleted: Counter[str] = Counter()
    deliveries: Counter[str] = Counter()
    abandoned: set[str] = set()

    async def consume(seed: int) -> None:
        rng = random.Random(seed)
        while batch := await q.reserve(rng.choice([1, 5, 20]), timeout=30):
            deliveries.update(m.id for m in batch)
            if rng.random() < 0.1:  # this consumer dies holding its batch
                abandoned.update(m.id for m in batch)
                continue
            settled = await q.settle(deletes=[(m.id, m.reservation_id) for m in batch])
            deleted.update(m.id for m, s in zip(batch, settled.deleted) if s == "ok")

    rounds = 0
    while len(deleted) < MESSAGES:
        rounds += 1
        assert rounds < 40, "messages stopped coming back"
        await asyncio.gather(*(consume(rounds * 100 + seed) for seed in range(8)))
        clock.advance(30)  # every abandoned reservation lapses
    assert set(deleted) == set(ids) and set(deleted.values()) == {1}
    assert abandoned and all(deliveries[i] >= 2 for i in abandoned)
    assert sum(deliveries.values()) == (await q.info()).counters["reserved"]
    assert (await q.info()).size == 0
    await engine.aclose()
    await client.aclose()


# -- big queues: bounded work, never BUSY ------------------------------------------------------

BIG = 200_000


@pytest.fixture
def slowlog(redis_client):
    """Records every command that took over 50 ms. BUSY replies start after 5 s; unbounded work
    over these queues would take seconds."""
    old = redis_client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    redis_client.config_set("slowlog-log-slower-than", 50_000)
    redis_client.slowlog_reset()
    yield lambda: [(e["duration"], e["command"][:60]) for e in redis_client.slowlog_get(128)]
    redis_client.config_set("slowlog-log-slower-than", old)


def test_clear_of_a_200k_message_queue_is_one_short_call(real_engine, redis_client, slowlog):
    q = real_engine.queue("p", "big")
    fill(q, BIG)
    q.reserve(100)
    redis_client.slowlog_reset()
    assert q.clear() == BIG
    assert slowlog() == []
    assert q.info().size == 0 and q.reserve(10) == []
    assert sorted(k.decode() for k in redis_client.keys("fmq:{p/big}:*")) == ["fmq:{p/big}:meta"]


def test_delete_of_a_200k_message_queue_is_one_short_call(real_engine, redis_client, slowlog):
    q = real_engine.queue("p", "big")
    fill(q, BIG, delay=60)
    redis_client.slowlog_reset()
    q.delete()
    assert slowlog() == []
    assert redis_client.keys("fmq:{p/big}:*") == [b"fmq:{p/big}:idfloor"]  # expiring id floor only
    assert redis_client.pttl("fmq:{p/big}:idfloor") > 0


def test_200k_messages_expiring_at_once_are_removed_in_bounded_steps(real_engine, redis_client, clock, slowlog):
    q = real_engine.queue("p", "big")
    fill(q, BIG // 2, expires_in=10)
    fill(q, BIG // 2, expires_in=10, delay=5)  # indexed in the expiry set
    q.put(["survivor"])
    clock.advance(10)
    redis_client.slowlog_reset()
    calls = 0
    while True:  # what the sweeper does for a queue nobody reads
        exists, more, _ = q.maintain()
        calls += 1
        if not more:
            break
    assert slowlog() == []
    assert calls > 10, "each call must do bounded work"
    assert q.info().size == 1
    assert [m.body for m in q.reserve(10)] == [b"survivor"]


def test_reserve_behind_200k_expired_messages_stays_bounded(real_engine, redis_client, clock, slowlog):
    q = real_engine.queue("p", "big")
    fill(q, BIG, expires_in=10)
    q.put([NewMessage("fresh", expires_in=100)])
    clock.advance(10)
    redis_client.slowlog_reset()  # the fill's big batches may be slow on a busy machine: not under test
    got = []
    for _ in range(1000):
        got = q.reserve(1)
        if got:
            break
    assert [m.body for m in got] == [b"fresh"]
    assert slowlog() == []
