"""Coalescing (engine/coalesce.py): single-message puts, reserves and deletes on one queue made
in the same turn of the asyncio engine's loop go to Redis as one script call, and each caller
gets what its own call would have answered. Checked on a real Redis and on the cluster."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from ferrymq.engine import (
    AsyncEngine, MessageNotFound, NotReserved, PushConfig, QueueNotFound, Subscriber, Subscription,
)
from ferrymq.engine.clock import FakeClock


def script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(stats.get(name, {}).get("calls", 0) for name in ("cmdstat_fcall", "cmdstat_evalsha", "cmdstat_eval"))


@pytest.fixture
def sync_redis(redis_url: str) -> Any:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@contextlib.asynccontextmanager
async def engine_on(client: Any, **options: Any) -> AsyncIterator[AsyncEngine]:
    """An engine of its own over ``client`` (emptied first), closed with it after."""
    await client.flushall()
    engine = AsyncEngine(client, clock=FakeClock(), **options)
    try:
        yield engine
    finally:
        await engine.aclose()
        await client.aclose()


async def maintained(engine: AsyncEngine, name: str) -> Any:
    """Queue ``name``, created and maintained by a put and a reserve of its "first" message (left
    reserved): the calls after take the common case's scripts."""
    q = engine.queue("p", name)
    await q.put(["first"])
    await q.reserve(1)
    return q


async def counted(sync_redis: redis.Redis, work: Any) -> tuple[Any, int]:
    """``work``'s result and how many script calls Redis ran for it."""
    before = script_calls(sync_redis)
    result = await work
    return result, script_calls(sync_redis) - before


async def test_puts_of_one_turn_are_one_call_and_each_gets_its_id(aengine, sync_redis):
    q = aengine.queue("p", "q")
    await q.put(["first"])  # created and maintained: the next puts take the common case
    ids, calls = await counted(sync_redis, asyncio.gather(*(q.put([f"m{i}"]) for i in range(5))))
    assert calls == 1 and len({i for [i] in ids}) == 5
    taken = await q.reserve(6)
    assert [m.body for m in taken] == [b"first", b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert [m.id for m in taken[1:]] == [i for [i] in ids]  # in the order of the calls


async def test_reserves_of_one_turn_each_get_a_message_under_a_reservation_of_their_own(aengine, sync_redis):
    q = aengine.queue("p", "q")
    await q.put([f"m{i}" for i in range(4)])
    await q.reserve(1)  # maintained: the next reserves take the common case
    taken, calls = await counted(sync_redis, asyncio.gather(*(q.reserve(1) for _ in range(3))))
    assert calls == 1 and [[m.body for m in got] for got in taken] == [[b"m1"], [b"m2"], [b"m3"]]
    a, b, c = (got[0] for got in taken)
    assert len({a.reservation_id, b.reservation_id, c.reservation_id}) == 3
    with pytest.raises(NotReserved):  # another caller's reservation id is no use on this message
        await q.delete_message(b.id, a.reservation_id)
    await q.delete_message(a.id, a.reservation_id)
    await q.release(b.id, b.reservation_id)
    assert (await q.info()).reserved == 2 and (await q.get(c.id)).reserved_count == 1  # m0 and m3


async def test_reserves_merge_only_with_the_same_options(aengine, sync_redis):
    q = aengine.queue("p", "q")
    await q.put([f"m{i}" for i in range(5)])
    await q.reserve(1)
    taken, calls = await counted(sync_redis, asyncio.gather(q.reserve(1, timeout=30), q.reserve(1), q.reserve(1, timeout=30),
                                                            q.reserve(1)))
    assert calls == 2 and [got[0].timeout for got in taken] == [30, 60, 30, 60]
    assert sorted(got[0].body for got in taken) == [b"m1", b"m2", b"m3", b"m4"]


async def test_reserves_left_without_a_message_find_the_queue_empty(aengine):
    q = aengine.queue("p", "q")
    await q.put(["a", "b"])
    await q.reserve(1)
    got = await asyncio.gather(q.reserve(1), q.reserve(1), q.reserve(1))
    assert [[m.body for m in g] for g in got] == [[b"b"], [], []]


async def test_a_reserve_left_without_a_message_still_long_polls_for_the_next_put(aengine):
    q = aengine.queue("p", "q")
    await q.put(["a"])
    await q.reserve(1)
    await q.put(["b"])

    async def put_later() -> None:
        await asyncio.sleep(0.05)
        await q.put(["c"])

    got = await asyncio.gather(q.reserve(1), q.reserve(1, wait=5), put_later())
    assert [m.body for m in got[0]] == [b"b"] and [m.body for m in got[1]] == [b"c"]


async def test_deletes_of_one_turn_are_one_call_and_each_gets_its_own_status(aengine, sync_redis):
    q = aengine.queue("p", "q")
    await q.put([f"m{i}" for i in range(4)])
    a, b, c, d = await q.reserve(4)
    await q.release(d.id, d.reservation_id)
    results, calls = await counted(sync_redis, asyncio.gather(
        q.delete_message(a.id, a.reservation_id), q.delete_message(b.id, "0" * 16),
        q.delete_message(c.id, c.reservation_id), q.delete_message(d.id, d.reservation_id),
        return_exceptions=True))
    assert calls == 1
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], NotReserved) and isinstance(results[3], NotReserved)
    info = await q.info()
    assert (info.ready, info.reserved, info.counters["deleted"]) == (1, 1, 2)


async def test_deletes_without_reservation_ids_merge_and_settle_decides_the_others(aengine, sync_redis):
    """IronMQ v1's DELETE, a Cloudflare ack: no reservation id. Merged, the reserved ones are
    deleted in the one call; one that is not reserved (ready here) or unknown is left to settle,
    as when sent alone."""
    q = aengine.queue("p", "q")
    await q.put(["a", "b", "c", "d"])
    a, b = await q.reserve(2)
    c_id = (await q.peek(1))[0].id
    results, calls = await counted(sync_redis, asyncio.gather(
        q.delete_message(a.id), q.delete_message(c_id), q.delete_message(b.id), q.delete_message("1" * 19),
        return_exceptions=True))
    assert results[:3] == [None, None, None] and isinstance(results[3], MessageNotFound)
    assert calls == 3  # the merged call, then settle for the ready one and for the unknown one
    info = await q.info()
    assert (info.ready, info.reserved, info.counters["deleted"]) == (1, 0, 3)
    assert [m.body for m in await q.reserve(5)] == [b"d"]


async def test_deletes_of_one_id_in_one_turn_are_not_merged(aengine):
    q = aengine.queue("p", "q")
    await q.put(["a"])
    [a] = await q.reserve(1)
    results = await asyncio.gather(q.delete_message(a.id, a.reservation_id), q.delete_message(a.id, a.reservation_id),
                                   return_exceptions=True)
    assert results[0] is None and isinstance(results[1], MessageNotFound)


async def test_calls_that_need_the_full_script_each_take_it(aengine):
    """A queue with a default delay: put_ready answers FULL to the merged call, and each caller
    puts through the full script."""
    q = aengine.queue("p", "q")
    await q.create(delay=0)
    await q.put(["first"])
    await q.update(delay=1)
    ids = await asyncio.gather(*(q.put([f"m{i}"]) for i in range(3)))
    assert len({i for [i] in ids}) == 3 and (await q.info()).delayed == 3


async def test_pushes_of_one_turn_are_one_call_and_each_reports_the_backlog_after_them(aengine, sync_redis):
    """Cloudflare's push: a put that reports the backlog, through the full put script, into the
    queue of a known id. Merged, each gets its id, and the backlog after all of them."""
    q = aengine.queue("p", "q")
    await q.put(["first"])
    queue_id = (await q.info()).id
    pushed, calls = await counted(sync_redis, asyncio.gather(*(q.push([f"m{i}"], queue_id=queue_id) for i in range(4))))
    assert calls == 1 and len({p.ids[0] for p in pushed}) == 4
    assert [p.backlog.ready for p in pushed] == [5, 5, 5, 5]
    assert [m.body for m in await q.reserve(5)] == [b"first", b"m0", b"m1", b"m2", b"m3"]


async def test_puts_that_need_the_full_script_merge_there_too(aengine, sync_redis):
    """A queue with a default delay: put_ready answers the merged call FULL, and the callers'
    full puts, made in one turn, are merged in turn."""
    q = aengine.queue("p", "delayed")
    await q.create(delay=5)
    await q.put(["first"])
    ids, calls = await counted(sync_redis, asyncio.gather(*(q.put([f"m{i}"]) for i in range(4))))
    assert calls <= 2 and len({i for [i] in ids}) == 4 and (await q.info()).delayed == 5


async def test_a_dead_letter_a_merged_put_makes_is_moved_and_told_once(aengine, clock):
    """The work a merged reply's flags leave (dead letters to move) is its first caller's alone:
    left to every caller, each moved the same entry and sent its event."""
    await aengine.queue("p", "events").create()
    await aengine.queue("p", "dead").create()
    q = aengine.queue("p", "work")
    await q.create(max_deliveries=1, dead_letter_queue="dead", timeout=1)
    await aengine.put_subscription("p", Subscription("s1", "watch", True, "work", ("message.dead_lettered",), "events"))
    await q.put(["x"])
    assert len(await q.reserve(1)) == 1
    clock.advance(2)  # lapsed, out of deliveries: the next put's maintenance dead-letters it
    await asyncio.gather(*(q.put([f"m{i}"]) for i in range(4)))
    assert (await aengine.queue("p", "dead").info()).ready == 1
    assert len(await aengine.queue("p", "events").peek(10)) == 1


async def test_merged_puts_to_a_missing_queue_each_raise(aengine):
    q = aengine.queue("p", "missing")
    results = await asyncio.gather(*(q.put(["x"], create=False) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, QueueNotFound) for r in results)


async def test_a_caller_cancelled_before_the_send_is_left_out(aengine):
    q = aengine.queue("p", "q")
    await q.put(["first"])
    kept = asyncio.ensure_future(q.put(["kept"]))
    dropped = asyncio.ensure_future(q.put(["dropped"]))
    await asyncio.sleep(0)  # both have queued their call; the turn has not ended
    dropped.cancel()
    await asyncio.gather(kept, dropped, return_exceptions=True)
    assert dropped.cancelled() and [m.body for m in await q.reserve(5)] == [b"first", b"kept"]


async def test_a_merged_calls_flags_go_to_the_first_caller_still_waiting(aengine, sync_redis, redis_url, busy_redis):
    """A push queue's puts, merged: the caller that lists the queue for the pushers (the work the
    reply's flags leave, one caller's alone) is the first still waiting when the reply comes. Left
    to a first caller that gave up meanwhile, nobody listed it: the others' messages waited for the
    queue's next put."""
    q = aengine.queue("p", "pushed")
    await q.set_push(PushConfig((Subscriber("http://a.example/hook"),)))
    await q.put(["first"])
    sync_redis.zrem("fmq:pushq", "p\tpushed")  # (pushers that found it idle took it off their list)
    async with busy_redis(redis_url, 0.3):  # what is sent meanwhile waits for it
        first = asyncio.ensure_future(q.put(["a"]))
        others = [asyncio.ensure_future(q.put([f"b{i}"])) for i in range(3)]
        await asyncio.sleep(0.05)  # sent, as one call, and waiting on Redis
        first.cancel()
        await asyncio.gather(*others)
    assert sync_redis.zscore("fmq:pushq", "p\tpushed") is not None


async def test_a_caller_cancelled_while_its_full_group_waits_for_the_turns_end_is_left_out(redis_url, busy_redis):
    """A burst: a full group of merged calls waits for the turn's end while as many round trips are
    under way as connections are kept (one here). A caller cancelled meanwhile is left out of the
    call, as the auto-pipeline leaves out a command not yet sent: sent as it was, its message was
    reserved under a token nobody held, out of sight until the reservation lapsed."""
    pool = aioredis.ConnectionPool.from_url(redis_url, max_connections=4)  # keeps one connection
    try:
        async with engine_on(aioredis.Redis(connection_pool=pool)) as engine:
            q = await maintained(engine, "held")
            await q.put([f"m{i}" for i in range(8)])
            async with busy_redis(redis_url, 0.3):
                under_way = asyncio.ensure_future(q.put(["x", "y"]))  # (two messages: not merged)
                await asyncio.sleep(0.01)
                reserves = [asyncio.ensure_future(q.reserve(1)) for _ in range(8)]
                await asyncio.sleep(0)  # each has made its call: the group is full
                reserves[0].cancel()
                await asyncio.gather(under_way, *reserves, return_exceptions=True)
            taken = [m for r in reserves[1:] for m in r.result()]
            assert reserves[0].cancelled() and len(taken) == 7
            assert (await q.info()).reserved == 1 + 7  # "first", and the seven taken
    finally:
        await pool.disconnect()


async def test_without_coalescing_each_call_is_its_own(redis_url, sync_redis):
    async with engine_on(aioredis.Redis.from_url(redis_url), coalesce=False) as engine:
        q = await maintained(engine, "alone")
        _, calls = await counted(sync_redis, asyncio.gather(*(q.put([f"m{i}"]) for i in range(3))))
        assert calls == 3


async def test_merged_calls_on_the_cluster(cluster):
    async with engine_on(cluster.async_client()) as engine:
        queues = [await maintained(engine, name) for name in ("a", "b", "c")]  # in slots of their own
        ids = await asyncio.gather(*(q.put([f"{i}"]) for q in queues for i in range(3)))
        assert all(len({i for [i] in ids[k : k + 3]}) == 3 for k in (0, 3, 6))  # ids are per queue
        taken = await asyncio.gather(*(q.reserve(1) for q in queues for _ in range(3)))
        assert sorted(m.body for got in taken for m in got) == sorted([b"0", b"1", b"2"] * 3)
        deleted = await asyncio.gather(*(queues[i // 3].delete_message(got[0].id, got[0].reservation_id)
                                         for i, got in enumerate(taken)))
        assert deleted == [None] * 9
        assert [(await q.info()).size for q in queues] == [1, 1, 1]  # each queue's "first", still reserved


async def test_merged_calls_on_redis_6_2_run_by_sha(redis62_url):
    """Redis 6.2 has no functions: the merged calls go as EVALSHA, and the first merged call that
    finds the script not loaded yet falls back for each caller alike."""
    client = aioredis.Redis.from_url(redis62_url)
    async with engine_on(client) as engine:
        q = await maintained(engine, "q62")
        await client.script_flush()  # the merged calls below find their scripts missing
        ids = await asyncio.gather(*(q.put([f"m{i}"]) for i in range(3)))
        taken = await asyncio.gather(*(q.reserve(1) for _ in range(3)))
        assert [m.id for got in taken for m in got] == [i for [i] in ids]
        await asyncio.gather(*(q.delete_message(m.id, m.reservation_id) for got in taken for m in got))
        assert (await q.info()).size == 1 and engine.scripts.functions is False


async def test_merged_callers_that_find_fcall_unknown_each_fall_back_by_sha(redis62_url):
    """A Redis before 7 behind something that said it had functions: every caller of a merged
    FCALL gets "unknown command", and each sends its own call by sha (decided from the command
    sent, not from what another caller has learnt since)."""
    async with engine_on(aioredis.Redis.from_url(redis62_url)) as engine:
        q = await maintained(engine, "told7")
        engine.scripts.functions = True
        ids = await asyncio.gather(*(q.put([f"m{i}"]) for i in range(4)))
        assert len({i for [i] in ids}) == 4 and engine.scripts.functions is False


async def test_a_burst_of_merged_calls_keeps_to_the_connections_kept(redis_url):
    """Four hundred single puts in one turn: groups of merged calls go early only while fewer
    round trips are under way than connections are kept, as the auto-pipeline's own groups do;
    the rest go together at the turn's end. A group a round trip took 50 connections of 16."""
    pool = aioredis.ConnectionPool.from_url(redis_url, max_connections=16)  # raises past 16
    try:
        async with engine_on(aioredis.Redis(connection_pool=pool)) as engine:
            q = await maintained(engine, "burst")
            results = await asyncio.gather(*(q.put([f"m{i}"]) for i in range(400)), return_exceptions=True)
            assert not [r for r in results if isinstance(r, BaseException)]
            assert (await q.info()).ready == 400
    finally:
        await pool.disconnect()
