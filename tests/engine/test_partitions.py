"""Partitioned queues: a queue's messages spread over several sets of keys (hash slots), each
verb over the whole queue or over the partition a message id names. The rest of the engine suite
also runs on queues of 3 partitions (tests/conftest.py, PARTITIONED_BACKENDS); these tests are
about what partitions themselves promise."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import Alert, AsyncEngine, Engine, InvalidArgument, MessageNotFound, NewMessage, RedisClock
from ferrymq.engine.keys import queue_keys


def partition(message_id: str) -> int:
    return int(message_id[19:] or 0)


def test_a_queue_of_one_partition_keeps_the_keys_it_always_had(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.put(["a"])
    q.reserve()
    keys = redis_client.keys()
    assert b"fmq:{p/q}:meta" in keys
    assert all(k.startswith((b"fmq:{p/q}:", b"fmq:{p}:")) or k == b"fmq:projects" for k in keys)
    assert redis_client.hget(b"fmq:{p/q}:meta", "parts") is None
    assert q.info().settings.partitions == 1


class CountingConnection(redis.Connection):
    """Counts the round trips to Redis (a command, or a pipeline of them), on every connection."""

    sent = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        type(self).sent += 1
        super().send_packed_command(command, check_health)


def test_one_partition_costs_one_redis_call_per_message_verb_and_three_no_more(redis_url, clock):
    """put, reserve and delete: one script call each on a queue of 1 partition (the layout a
    process read is trusted for a second), and put and delete one each on a queue of 3."""
    client = redis.Redis.from_url(redis_url, connection_class=CountingConnection)
    client.flushall()
    engine = Engine(client, clock=clock)

    single, parted = engine.queue("p", "single"), engine.queue("p", "parted")
    single.put(["warm"]), single.delete_message(single.reserve()[0].id)
    parted.ensure(partitions=3)
    for q in (single, parted):
        before = CountingConnection.sent
        [mid] = q.put(["a"])
        [m] = q.reserve()
        middle = CountingConnection.sent
        q.delete_message(m.id, m.reservation_id)
        assert m.id == mid
        if q is single:
            assert (middle - before, CountingConnection.sent - middle) == (2, 1)
        else:
            assert CountingConnection.sent - middle == 1 and middle - before <= 1 + 3
    client.close()


def test_puts_go_round_the_partitions_and_ids_say_which(engine):
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    ids = [q.put([f"m{i}"])[0] for i in range(6)]
    assert sorted(partition(i) for i in ids) == [0, 0, 1, 1, 2, 2]
    assert all(len(i) == (19 if partition(i) == 0 else 21) and i.isdigit() for i in ids)
    info = q.info()
    assert (info.ready, info.total_messages, info.settings.partitions) == (6, 6, 3)
    got = q.reserve(6)
    assert sorted(m.id for m in got) == sorted(ids)
    assert q.info().reserved == 6


def test_a_partition_key_keeps_its_messages_in_order(engine):
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    for i in range(5):
        q.put([f"a{i}"], partition_key="account-a")
        q.put([f"b{i}"], partition_key="account-b")
    a = [m.body for m in q.peek(10) if m.body.startswith(b"a")]
    assert a == [f"a{i}".encode() for i in range(5)]
    taken = q.reserve(10)
    assert len({partition(m.id) for m in taken if m.body.startswith(b"a")}) == 1
    assert [m.body for m in taken if m.body.startswith(b"b")] == [f"b{i}".encode() for i in range(5)]


def test_get_touch_release_and_delete_reach_the_partition_an_id_names(engine, clock):
    q = engine.queue("p", "q")
    q.ensure(partitions=3, timeout=30)
    ids = [q.put([f"m{i}"])[0] for i in range(3)]
    by_id = {m.id: m for m in q.reserve(3)}
    assert set(by_id) == set(ids)
    for mid in ids:
        m = by_id[mid]
        assert q.get(mid).status == "reserved" and q.get(mid).body == m.body
        touched = q.touch(mid, m.reservation_id, timeout=60)
        assert touched.reserved_until == clock.ms + 60_000
    first, second, third = ids
    assert q.release(first, q.get(first).reservation_id) is True
    assert q.get(first).status == "ready"
    q.delete_message(second, q.get(second).reservation_id)
    with pytest.raises(MessageNotFound):
        q.get(second)
    assert q.delete_messages([third, second, "1700000000000000000" + "07"]) == [True, False, False]
    info = q.info()
    assert (info.ready, info.reserved, info.counters["deleted"]) == (1, 0, 2)


def test_a_settle_of_ids_from_every_partition_answers_each_in_order(engine):
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    ids = [q.put([f"m{i}"])[0] for i in range(6)]
    q.reserve(6)
    settled = q.settle(deletes=[(ids[0], None), (ids[4], None), ("nope", None)],
                       releases=[(ids[2], None, 5), (ids[1], None, None)])
    assert settled.deleted == ["ok", "ok", "not_found"]
    assert settled.released == ["ok", "ok"]
    info = q.info()
    assert (info.ready, info.delayed, info.reserved) == (1, 1, 2)


def test_counts_clear_and_delete_cover_every_partition(engine):
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    for i in range(9):
        q.put([NewMessage(f"m{i}", delay=10 if i % 3 == 0 else None)])
    assert (q.info().ready, q.info().delayed) == (6, 3)
    [stats] = engine.stats("p")
    assert (stats.ready, stats.delayed, stats.counters["put"]) == (6, 3, 9)
    assert q.maintain()[0] is True
    assert q.clear() == 9
    assert (q.info().ready, q.info().delayed) == (0, 0)
    q.delete()
    assert engine.list_queues("p") == []


def test_a_deleted_partitioned_queue_leaves_no_keys_but_its_id_floors(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.ensure(partitions=3)
    for i in range(3):
        q.put([f"m{i}"])
    assert len({k.split(b"}")[0] for k in redis_client.keys(b"fmq:{p/q*")}) == 3
    q.delete()
    assert {k.rpartition(b":")[2] for k in redis_client.keys(b"fmq:{p/q*")} == {b"idfloor"}


def test_reserve_takes_from_every_partition_until_it_has_n(engine):
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    q.put(["only one"], partition_key="k")
    for _ in range(3):  # whichever partition each reserve starts from, it looks in all
        [m] = q.reserve(5)
        assert m.body == b"only one"
        q.release(m.id, m.reservation_id)
    assert (q.info().ready, q.info().reserved) == (1, 0)


def test_fewer_partitions_leave_old_messages_to_drain_and_more_start_at_once(engine):
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    old = [q.put([f"old{i}"])[0] for i in range(3)]
    q.update(partitions=1)
    new = [q.put([f"new{i}"])[0] for i in range(3)]
    assert {partition(i) for i in new} == {0}
    taken = q.reserve(10)
    assert sorted(m.id for m in taken) == sorted(old + new)
    q.update(partitions=4)
    spread = {partition(q.put(["x"])[0]) for _ in range(4)}
    assert spread == {0, 1, 2, 3}
    assert q.info().settings.partitions == 4


def test_settings_changes_reach_every_partition(engine):
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    q.update(paused=True, timeout=5)
    for _ in range(3):
        q.put(["x"])
    from ferrymq.engine import DeliveryPaused

    with pytest.raises(DeliveryPaused):
        q.reserve(3)
    q.update(paused=False)
    assert {m.timeout for m in q.reserve(3)} == {5}


def test_alerts_and_partitions_go_together_whichever_comes_first(engine):
    """Alerts watch the sum of the partitions' sizes from the moment they are set or partitions
    are added: every partition states its size to partition 0 then, not at its next change."""
    watch = engine.queue("p", "watch")
    q = engine.queue("p", "q")
    q.ensure(partitions=3)
    q.put([f"m{i}" for i in range(3)]), q.put(["m3", "m4"]), q.put(["m5"])  # 3, 2 and 1 in the three partitions
    q.add_alerts([Alert("fixed", 7, "watch")])
    q.put(["m6"])
    q.put(["m7"])
    assert [json.loads(m.body)["queue_size"] for m in watch.reserve(10, delete=True)] == [7]

    w = engine.queue("p", "w")
    w.add_alerts([Alert("fixed", 10, "watch")])
    w.put([f"n{i}" for i in range(9)])
    w.update(partitions=3)
    w.put(["n9"])  # into a partition that did not exist when the alert was set
    [alert] = watch.reserve(10, delete=True)
    assert json.loads(alert.body)["source_queue"] == "w" and json.loads(alert.body)["queue_size"] == 10
    with pytest.raises(InvalidArgument):
        q.update(partitions=17)


def test_dead_letters_of_every_partition_reach_the_dead_letter_queue(engine, clock):
    q = engine.queue("p", "q")
    q.ensure(partitions=3, max_deliveries=1, dead_letter_queue="dead", timeout=1)
    ids = [q.put([f"m{i}"])[0] for i in range(3)]
    assert len(q.reserve(3)) == 3
    clock.advance(2)
    assert q.reserve(3) == []
    bodies = sorted(m.body for m in engine.queue("p", "dead").reserve(10))
    assert bodies == [b"m0", b"m1", b"m2"] and len(ids) == 3


async def test_a_long_poll_wakes_on_a_put_into_any_partition(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    await client.flushall()
    consumer = AsyncEngine(client, clock=RedisClock())
    producer = AsyncEngine(aioredis.Redis.from_url(redis_url), clock=RedisClock())
    try:
        await consumer.queue("p", "q").ensure(partitions=3)
        for key in ("a", "b", "c", "d"):
            waiting = asyncio.ensure_future(consumer.queue("p", "q").reserve(wait=5))
            await asyncio.sleep(0.05)
            [mid] = await producer.queue("p", "q").put([key], partition_key=key)
            [got] = await asyncio.wait_for(waiting, 2)
            assert got.id == mid
    finally:
        await consumer.aclose()
        await producer.aclose()
        await client.aclose()
        await producer.client.aclose()


@pytest.mark.parametrize("count", [2, 3, 5])
def test_partitions_take_one_arc_each_of_the_slot_ring(count):
    """Masters hold contiguous, even slot ranges: a partition per arc is a partition per master."""
    from redis.crc import key_slot

    from ferrymq.engine.keys import partition_tags

    arc = 16384 / count
    for name in ("orders", "events", "q7", "x" * 40):
        tags = partition_tags("fmq", "p", name, 1, count - 1)
        slots = [key_slot(queue_keys("fmq", "p", name, t).meta.encode()) for t in ("", *tags)]
        assert len({int(slot // arc) for slot in slots}) == count


def test_a_process_that_read_the_layout_before_partitions_were_added_still_finds_their_messages(redis_url, clock):
    """The worst case of trusting a layout for LAYOUT_TTL: process B read it (1 partition), then A
    adds partitions and hands out a message of a new one. B's delete, touch and get of it must
    not answer 'not found' (the message would come back after its timeout): an id naming a
    partition B does not know makes B read the layout again. B's reserves meanwhile miss the new
    partitions for at most that second (nothing is lost: the next read covers them)."""
    a = Engine(redis.Redis.from_url(redis_url), clock=clock)
    a.client.flushall()
    qa = a.queue("p", "q")
    qa.put(["old"])
    stale = [Engine(redis.Redis.from_url(redis_url), clock=clock).queue("p", "q") for _ in range(4)]
    for qb in stale:
        assert qb.info().settings.partitions == 1  # each now trusts "1 partition" for a second
    qa.update(partitions=3)
    ids = [qa.put([f"new{i}"])[0] for i in range(3)]
    assert {partition(i) for i in ids} == {0, 1, 2}
    taken = {m.id: m for m in qa.reserve(4)}
    far = next(taken[i] for i in ids if partition(i) == 2)
    getter, toucher, settler, deleter = stale
    assert getter.get(far.id).body == far.body
    touched = toucher.touch(far.id, far.reservation_id)
    others = [(m.id, m.reservation_id) for m in taken.values() if m.id != far.id]
    assert settler.settle(deletes=others).deleted == ["ok"] * 3
    deleter.delete_message(far.id, touched.reservation_id)
    assert qa.info().size == 0
