"""The queue setting `requeue`: where a lapsed or released message goes back. "end" (the default:
IronMQ v1, Cloudflare) or "front" (IronMQ v3: it is the next one handed out). Messages pushed to
the front keep every rule of the FIFO: expiry, exact counts, and the maintenance moment `due`."""

from __future__ import annotations

import pytest

from ferrymq.engine import InvalidArgument, NewMessage
from ferrymq.engine.core import state_fields


def bodies(messages):
    return [m.body for m in messages]


def front_queue(engine, name="q", **settings):
    q = engine.queue("p", name)
    q.create(requeue="front", **settings)
    return q


def test_queues_requeue_at_the_end_unless_set_otherwise(engine):
    q = engine.queue("p", "q")
    q.put(["a", "b"])
    assert q.info().settings.requeue == "end"
    [a] = q.reserve()
    q.release(a.id)
    assert bodies(q.reserve(2)) == [b"b", b"a"]
    assert front_queue(engine, "v3").info().settings.requeue == "front"


def test_requeue_must_be_end_or_front(engine):
    with pytest.raises(InvalidArgument) as err:
        engine.queue("p", "q").create(requeue="middle")
    assert err.value.field == "requeue"


@pytest.mark.one_partition
def test_a_lapsed_reservation_goes_to_the_front(engine, clock):
    q = front_queue(engine)
    q.put([NewMessage("first", timeout=5), "second", "third"])
    q.reserve()
    clock.advance(5)
    q.put(["fourth"])
    assert bodies(q.reserve(10)) == [b"first", b"second", b"third", b"fourth"]


def test_a_released_message_goes_to_the_front(engine):
    q = front_queue(engine)
    q.put(["a", "b", "c"])
    [a, b] = q.reserve(2)
    q.release(a.id, a.reservation_id)
    assert bodies(q.peek(3)) == [b"a", b"c"]
    [again] = q.reserve()
    assert (again.id, again.reserved_count) == (a.id, 2)


def test_each_message_requeued_goes_in_front_of_those_requeued_before(engine, clock):
    """Releases one by one and lapses found together by one maintenance pass give the same order."""
    released = front_queue(engine, "released")
    released.put(["a", "b", "c"])
    a, b = released.reserve(2)
    released.release(a.id)
    released.release(b.id)
    lapsed = front_queue(engine, "lapsed")
    lapsed.put(["a", "b", "c"])
    lapsed.reserve(timeout=5)
    clock.advance(1)
    lapsed.reserve(timeout=5)
    clock.advance(5)  # both lapsed: the next call requeues them in the order they lapsed
    assert bodies(released.reserve(3)) == bodies(lapsed.reserve(3)) == [b"b", b"a", b"c"]


@pytest.mark.one_partition
def test_a_release_with_a_delay_comes_back_at_the_front_when_due(engine, clock):
    q = front_queue(engine)
    q.put(["a", "b"])
    [a] = q.reserve()
    q.release(a.id, delay=10)
    q.put([NewMessage("delayed put", delay=10)])  # a new message: to the end when due, as always
    clock.advance(10)
    q.put(["c"])
    assert bodies(q.reserve(5)) == [b"a", b"b", b"delayed put", b"c"]


def test_the_queues_retry_delay_also_brings_a_lapsed_message_back_at_the_front(engine, clock):
    q = front_queue(engine, retry_delay=3)
    q.put([NewMessage("a", timeout=2), "b"])
    q.reserve()
    clock.advance(2)
    assert bodies(q.peek(2)) == [b"b"]  # waiting out the retry delay
    clock.advance(3)
    assert bodies(q.reserve(2)) == [b"a", b"b"]


@pytest.mark.one_partition
def test_in_order_messages_behind_the_front_expire_on_time(engine, clock):
    q = front_queue(engine)
    q.put([NewMessage("long", expires_in=1000, timeout=5)])
    q.reserve()
    q.put([NewMessage("short", expires_in=10), NewMessage("short2", expires_in=10)])
    clock.advance(5)  # "long" lapses: to the front, ahead of messages that expire sooner
    assert (q.info().ready, bodies(q.peek(3))) == (3, [b"long", b"short", b"short2"])
    clock.advance(5)  # the two short-lived messages expire behind a live head
    info = q.info()
    assert (info.size, info.ready, info.counters["expired"]) == (1, 1, 2)
    assert bodies(q.peek(3)) == [b"long"]
    assert bodies(q.reserve(3)) == [b"long"]


def test_a_message_at_the_front_expires_on_time(engine, clock):
    q = front_queue(engine)
    q.put([NewMessage("short", expires_in=20, timeout=5), NewMessage("long", expires_in=1000)])
    q.reserve()
    clock.advance(5)
    assert bodies(q.peek(2)) == [b"short", b"long"]
    clock.advance(15)
    assert (q.info().size, bodies(q.reserve(2))) == (1, [b"long"])


def test_deleting_a_message_at_the_front_keeps_counts_exact(engine):
    q = front_queue(engine)
    q.put(["a", "b", "c"])
    a, b = q.reserve(2)
    q.release(a.id)
    q.release(b.id)
    q.delete_message(b.id)  # ready at the head: leaves a ghost there
    assert q.info().ready == 2
    assert bodies(q.reserve(3)) == [b"a", b"c"]
    assert q.info().size == 2


def test_clear_and_refill_restart_a_plain_fifo(engine):
    q = front_queue(engine)
    q.put(["a", "b"])
    [a] = q.reserve()
    q.release(a.id)
    q.clear()
    q.put(["x", "y"])
    assert bodies(q.reserve(2)) == [b"x", b"y"]


def test_switching_back_to_the_end_changes_only_later_requeues(engine):
    q = front_queue(engine)
    q.put(["a", "b", "c"])
    a, b = q.reserve(2)
    q.release(a.id)
    q.update(requeue="end")
    q.release(b.id)
    assert bodies(q.reserve(3)) == [b"a", b"c", b"b"]


def test_dead_lettering_is_unchanged_at_the_front(engine, clock):
    q = front_queue(engine, max_deliveries=2, dead_letter_queue="dead")
    q.put([NewMessage("x", timeout=1), "y"])
    for _ in range(2):
        assert bodies(q.reserve()) == [b"x"]
        clock.advance(1)
    assert bodies(q.reserve()) == [b"y"]
    assert bodies(engine.queue("p", "dead").reserve()) == [b"x"]


def test_nothing_is_left_in_redis_once_messages_at_the_front_expire(real_engine, redis_client, keys_holding_messages, clock):
    q = real_engine.queue("p", "q")
    q.create(requeue="front")
    q.put([NewMessage(f"m{i}", expires_in=10) for i in range(20)])
    q.reserve(5, timeout=5)
    clock.advance(5)  # five at the front, fifteen behind them
    assert q.info().ready == 20
    clock.advance(5)
    assert q.info().size == 0
    assert keys_holding_messages("p", "q") == ["meta"]
    assert state_fields(redis_client.hget("fmq:{p/q}:meta", "q"))["front"] == "0"
