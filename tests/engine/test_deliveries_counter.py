"""The deliveries counter (``counters["reserved"]``): every delivery counted once, whether its
reservation is live or ended, and however it ended. A reserve writes no counter: the state counts
a delivery when its reservation ends, and readers add the live ones (lua/includes/state.lua
LIVE_UNCOUNTED), so each way a reservation ends is checked here, through info and stats alike."""

from __future__ import annotations

from typing import Any

from ferrymq.engine.core import FLAG_LIVE_UNCOUNTED, STATE, STATE_FIELDS


def state_of(redis_client: Any, meta: str) -> dict[str, float]:
    return dict(zip(STATE_FIELDS, STATE.unpack(redis_client.hget(meta, "q"))))


def counted(engine: Any, q: Any) -> tuple[int, int]:
    """The counter as info and as stats read it."""
    [stats] = [s for s in engine.stats("p") if s.name == "q"]
    return q.info().counters["reserved"], stats.counters["reserved"]


def test_every_delivery_counts_once_however_its_reservation_ends(engine, clock):
    q = engine.queue("p", "q")
    q.put([f"m{i}" for i in range(8)])
    first = q.reserve(2)
    assert len(first) == 2 and counted(engine, q) == (2, 2)  # live

    q.delete_message(first[0].id, first[0].reservation_id)
    assert counted(engine, q) == (2, 2)  # ended by a delete
    q.release(first[1].id, first[1].reservation_id)
    assert counted(engine, q) == (2, 2)  # ended by a release, the message ready again

    lapsing = q.reserve(1, timeout=1)
    assert len(lapsing) == 1 and counted(engine, q) == (3, 3)
    clock.advance(2)
    assert counted(engine, q) == (3, 3) and q.info().reserved == 0  # ended by lapsing

    assert len(q.reserve(2, delete=True)) == 2 and counted(engine, q) == (5, 5)  # ended as taken
    held = q.reserve(3)
    assert len(held) == 3 and counted(engine, q) == (8, 8)
    q.settle(deletes=[(m.id, m.reservation_id) for m in held[:2]])  # a batch of deletes
    assert counted(engine, q) == (8, 8)
    q.clear()
    assert counted(engine, q) == (8, 8)  # the last one ended by the clear
    q.put(["again"])
    assert len(q.reserve(1)) == 1 and counted(engine, q) == (9, 9)


def test_a_queue_counted_before_live_reservations_were_left_out_keeps_its_count(real_engine, redis_client):
    """A queue whose state counted each delivery as it was made (an earlier FerryMQ) reads the
    same before and after a script first opens it, and counts on from there."""
    q = real_engine.queue("p", "q")
    q.put(["a", "b", "c"])
    a, b = q.reserve(2)
    meta = "fmq:{p/q}:meta"
    state = state_of(redis_client, meta)
    assert int(state["flags"]) & FLAG_LIVE_UNCOUNTED and state["c_reserved"] == 0
    state["flags"] -= FLAG_LIVE_UNCOUNTED
    state["c_reserved"] = 2  # the earlier way: both deliveries counted as they were made
    redis_client.hset(meta, "q", STATE.pack(*state.values()))

    assert counted(real_engine, q) == (2, 2)  # stats before any script opened it, then info, which does
    assert int(state_of(redis_client, meta)["flags"]) & FLAG_LIVE_UNCOUNTED  # written at that open
    q.delete_message(a.id, a.reservation_id)
    q.release(b.id, b.reservation_id)
    assert counted(real_engine, q) == (2, 2)
    assert len(q.reserve(2)) == 2 and counted(real_engine, q) == (4, 4)


def test_stats_reads_each_queue_at_once_so_a_reservation_ending_cannot_show_twice(real_engine, redis_client):
    """The counter adds two figures that a delete moves in opposite directions: read by separate
    commands, a reservation ending between them showed the counter one up, then down again,
    which a monitoring system reads as a reset. Stats reads each queue in one script."""
    q = real_engine.queue("p", "q")
    q.put(["a", "b"])
    q.reserve(1)
    threshold = redis_client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    redis_client.config_set("slowlog-log-slower-than", 0)
    redis_client.slowlog_reset()
    try:
        [stats] = real_engine.stats("p")
    finally:
        redis_client.config_set("slowlog-log-slower-than", threshold)
    entries = redis_client.slowlog_get(128)
    sent = {e["command"].split()[0].upper() for e in entries  # to the queue's keys, not from a script
            if b"{p/q}:" in e["command"] and e["client_address"] != b"?:0"}
    assert b"FCALL" in sent and not {b"LLEN", b"ZCOUNT", b"HMGET"} & sent
    assert (stats.ready, stats.reserved, stats.counters["reserved"]) == (1, 1, 1)


def test_an_idle_queue_counted_the_earlier_way_is_converted_by_its_first_poll(real_engine, redis_client):
    """A poll that finds nothing writes nothing, so the conversion of an earlier queue's counter is
    written as the queue is opened: the next polls run the common case alone."""
    q = real_engine.queue("p", "idle")
    q.put(["a"])
    [a] = q.reserve(1)
    meta = "fmq:{p/idle}:meta"
    state = state_of(redis_client, meta)
    state["flags"] -= FLAG_LIVE_UNCOUNTED
    state["c_reserved"] = 1
    redis_client.hset(meta, "q", STATE.pack(*state.values()))
    assert q.reserve(1) == [] and int(state_of(redis_client, meta)["flags"]) & FLAG_LIVE_UNCOUNTED
    assert q.info().counters["reserved"] == 1
