"""RedisClock: Redis's time read by the engine about once a second and passed to the scripts, so
that they need not read TIME on every call (engine/clock.py)."""

from __future__ import annotations

import asyncio
import time

import redis
import redis.asyncio as aioredis

from ferrymq.engine import AsyncEngine, Engine, RedisClock

TIME_REPLY = (1_765_000_000, 123_456)  # seconds, microseconds
TIME_MS = 1_765_000_000_123.456


class Monotonic:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def read(clock: RedisClock, monotonic: Monotonic, round_trip: float, reply: object = TIME_REPLY) -> None:
    sent_at = clock.reading_sent()
    monotonic.now += round_trip
    clock.read(reply, sent_at)


def test_until_a_reading_the_scripts_read_time_themselves():
    clock = RedisClock(Monotonic())
    assert clock.script_now() == ""
    assert clock.reading_due()


def test_after_a_reading_the_clock_follows_redis_time_on_the_monotonic_clock():
    monotonic = Monotonic()
    clock = RedisClock(monotonic)
    read(clock, monotonic, round_trip=0.002)
    # Redis answered mid-trip: 1 ms before the reply arrived.
    assert clock.script_now() == str(int(TIME_MS + 1))
    monotonic.now += 0.25
    assert clock.script_now() == str(int(TIME_MS + 251))


def test_a_reading_is_due_again_a_second_later_and_not_while_one_is_under_way():
    monotonic = Monotonic()
    clock = RedisClock(monotonic)
    clock.reading_sent()
    assert not clock.reading_due()
    monotonic.now += 0.001
    clock.read(TIME_REPLY, monotonic.now - 0.001)
    monotonic.now += RedisClock.READ_EVERY - 0.01
    assert not clock.reading_due()
    monotonic.now += 0.02
    assert clock.reading_due()


def test_a_slow_or_failed_reading_is_not_trusted_and_is_tried_again_a_second_later():
    monotonic = Monotonic()
    clock = RedisClock(monotonic)
    read(clock, monotonic, round_trip=RedisClock.MAX_ROUND_TRIP * 2)
    assert clock.script_now() == ""
    assert not clock.reading_due()
    monotonic.now += RedisClock.READ_EVERY
    assert clock.reading_due()
    read(clock, monotonic, round_trip=0.001, reply=redis.ConnectionError("down"))
    assert clock.script_now() == ""


def test_a_slow_reading_leaves_the_last_trusted_one_in_use():
    monotonic = Monotonic()
    clock = RedisClock(monotonic)
    read(clock, monotonic, round_trip=0.002)
    monotonic.now += RedisClock.READ_EVERY
    read(clock, monotonic, round_trip=1.0, reply=(1_765_000_009, 0))  # a far-off answer, not trusted
    assert clock.script_now() == str(int(TIME_MS + 1 + (RedisClock.READ_EVERY + 1.0) * 1000))


def test_a_stale_reading_is_dropped_for_redis_time():
    monotonic = Monotonic()
    clock = RedisClock(monotonic)
    read(clock, monotonic, round_trip=0.001)
    monotonic.now += RedisClock.STALE - 0.1
    assert clock.script_now() != ""
    monotonic.now += 0.2
    assert clock.script_now() == ""


def time_calls(client: redis.Redis) -> int:
    return client.info("commandstats").get("cmdstat_time", {}).get("calls", 0)


def test_the_sync_engine_reads_time_once_for_many_calls_and_its_now_is_redis_time(redis_client):
    engine = Engine(redis_client)
    queue = engine.queue("clock", "sync")
    for _ in range(100):  # a first reading slowed by the connection's set-up is tried again
        queue.put(["first"])  # the engine's reading went first
        if engine.clock.script_now():
            break
        time.sleep(0.05)
    redis_client.config_resetstat()
    for _ in range(20):
        queue.put(["m"])
        queue.reserve(1)
    assert time_calls(redis_client) <= 1  # at most the engine's next reading; no script read TIME
    seconds, micros = redis_client.time()
    assert abs(int(engine.clock.script_now()) - (seconds * 1000 + micros / 1000)) < 50


async def test_the_async_engine_reads_time_in_the_background(redis_url, redis_client):
    client = aioredis.Redis.from_url(redis_url)
    engine = AsyncEngine(client)
    queue = engine.queue("clock", "async")
    try:
        for _ in range(100):  # a first reading slowed by the connection's set-up is tried again
            await queue.put(["first"])  # read TIME itself: the reading went along
            if engine.clock.script_now():
                break
            await asyncio.sleep(0.05)
        redis_client.config_resetstat()
        for _ in range(20):
            await queue.put(["m"])
            await queue.reserve(1)
        assert time_calls(redis_client) <= 1
        seconds, micros = redis_client.time()
        assert abs(int(engine.clock.script_now()) - (seconds * 1000 + micros / 1000)) < 50
    finally:
        await engine.aclose()
        await client.aclose()
