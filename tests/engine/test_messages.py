"""Message verbs and rules: put, reserve, peek, get, delete, touch, release, delay, expiry,
dead-lettering, reservation ids. Time moves with the fake clock, never with sleeps."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from ferrymq.engine import (
    DeliveryPaused,
    InvalidArgument,
    MessageNotFound,
    NewMessage,
    NotReserved,
    QueueNotFound,
    TooLarge,
)
from ferrymq.engine.core import state_fields
from ferrymq.engine.models import RESERVED, Message, reserved_message


def bodies(messages):
    return [m.body for m in messages]


# -- put ----------------------------------------------------------------------------------------


@pytest.mark.one_partition
def test_put_returns_digit_ids_increasing_in_put_order(engine):
    q = engine.queue("p", "q")
    ids = q.put(["a", "b", "c"]) + q.put(["d"])
    assert all(i.isdigit() and len(i) == 19 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 4


def test_put_keeps_bytes_unicode_and_empty_bodies(engine):
    q = engine.queue("p", "q")
    payloads = [b"\x00\xff\n|binary", "héllo ✓", ""]
    q.put(payloads)
    got = q.reserve(3)
    assert bodies(got) == [b"\x00\xff\n|binary", "héllo ✓".encode(), b""]


def test_put_stores_timeout_expiry_and_content_type(engine, clock):
    q = engine.queue("p", "q")
    [mid] = q.put([NewMessage("x", timeout=7, expires_in=100, content_type="json")])
    m = q.get(mid)
    assert (m.timeout, m.content_type, m.reserved_count) == (7, "json", 0)
    assert m.enqueued_at == clock.ms and m.expires_at == clock.ms + 100_000


def test_put_batch_over_the_limit_is_rejected_and_writes_nothing(engine):
    q = engine.queue("p", "q")
    with pytest.raises(TooLarge):
        q.put(["x"] * 101)
    with pytest.raises(QueueNotFound):
        q.info()


def test_put_with_one_bad_message_writes_nothing(engine):
    q = engine.queue("p", "q")
    with pytest.raises(InvalidArgument) as err:
        q.put(["ok", NewMessage("bad", delay=-1), "ok"])
    assert err.value.field == "messages[1].delay"
    with pytest.raises(QueueNotFound):
        q.info()


def test_body_over_the_size_limit_is_too_large(engine):
    with pytest.raises(TooLarge):
        engine.queue("p", "q").put([b"x" * (256 * 1024 + 1)])
    engine.queue("p", "q").put([b"x" * (256 * 1024)])


def test_a_body_over_the_size_limit_in_a_batch_is_named_by_its_index(engine):
    over = "é" * (128 * 1024) + "x"  # 262,145 bytes in UTF-8
    with pytest.raises(TooLarge) as bare:
        engine.queue("p", "q").put(["a", over])
    with pytest.raises(TooLarge) as wrapped:
        engine.queue("p", "q").put(["a", "b", NewMessage(over)])
    assert (bare.value.field, wrapped.value.field) == ("messages[1]", "messages[2].body")


@pytest.mark.parametrize("bad", [[], [5], [None], [NewMessage("x", content_type="a b")]])
def test_bad_put_arguments_are_invalid(engine, bad):
    with pytest.raises(InvalidArgument):
        engine.queue("p", "q").put(bad)


# -- reserve ------------------------------------------------------------------------------------


def test_a_reserved_message_built_slot_by_slot_is_the_one_init_builds():
    given = dict(id="1", body=b"b", timeout=2.5, reserved_count=3, enqueued_at=4, expires_at=5,
                 content_type="json", reservation_id="r", reserved_until=6)
    fast = reserved_message(**given)
    assert fast == Message(**given, status=RESERVED) and hash(fast) == hash(Message(**given, status=RESERVED))
    with pytest.raises(FrozenInstanceError):
        fast.id = "2"


def test_reserve_hands_out_messages_in_fifo_order(engine):
    q = engine.queue("p", "q")
    q.put([str(i) for i in range(10)])
    got = q.reserve(3) + q.reserve(3) + q.reserve(10)
    assert bodies(got) == [str(i).encode() for i in range(10)]
    assert q.reserve(1) == []


def test_reserve_returns_id_body_timeout_count_and_reservation(engine, clock):
    q = engine.queue("p", "q")
    [mid] = q.put([NewMessage("x", timeout=20)])
    [m] = q.reserve()
    assert (m.id, m.body, m.timeout, m.reserved_count, m.status) == (mid, b"x", 20, 1, "reserved")
    assert m.reservation_id and m.reserved_until == clock.ms + 20_000


def test_reserve_timeout_overrides_the_messages_own(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("x", timeout=20)])
    [m] = q.reserve(timeout=90)
    assert m.timeout == 90 and m.reserved_until == clock.ms + 90_000


def test_reserved_messages_are_invisible_to_reserve_and_peek(engine):
    q = engine.queue("p", "q")
    q.put(["a", "b"])
    q.reserve(1)
    assert bodies(q.peek(5)) == [b"b"]
    assert bodies(q.reserve(5)) == [b"b"]
    assert q.reserve(5) == [] and q.peek(5) == []


def test_reserve_on_a_missing_queue_is_empty_and_creates_nothing(engine):
    q = engine.queue("p", "nothing")
    assert q.reserve(5) == [] and q.peek(5) == []
    assert engine.list_queues("p") == []


@pytest.mark.parametrize("n", [0, 101, -1, 1.5, True])
def test_reserve_n_must_be_1_to_100(engine, n):
    with pytest.raises(InvalidArgument):
        engine.queue("p", "q").reserve(n)


def test_delete_on_reserve_removes_the_message(engine):
    q = engine.queue("p", "q")
    [mid] = q.put(["x"])
    [m] = q.reserve(delete=True)
    assert m.reserved_count == 1 and m.body == b"x"
    with pytest.raises(MessageNotFound):
        q.get(mid)
    assert q.info().size == 0


def test_reserved_count_grows_with_every_delivery(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("x", timeout=1)])
    counts = []
    for _ in range(3):
        [m] = q.reserve()
        counts.append(m.reserved_count)
        clock.advance(1)
    assert counts == [1, 2, 3]


def test_timed_out_reservation_goes_to_the_end_of_the_queue(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("first", timeout=5), "second", "third"])
    [m] = q.reserve()
    clock.advance(5)
    q.put(["fourth"])
    assert bodies(q.reserve(10)) == [b"second", b"third", b"first", b"fourth"]
    assert m.body == b"first"


def test_reservation_lapses_exactly_at_its_deadline(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("x", timeout=5)])
    q.reserve()
    clock.advance(4.999)
    assert q.reserve() == []
    clock.advance(0.001)
    assert bodies(q.reserve()) == [b"x"]


def test_paused_queue_delivers_nothing_but_still_stores_and_peeks(engine):
    q = engine.queue("p", "q")
    q.create(paused=True)
    q.put(["x"])
    with pytest.raises(DeliveryPaused):
        q.reserve()
    assert bodies(q.peek()) == [b"x"]
    q.update(paused=False)
    assert bodies(q.reserve()) == [b"x"]


# -- peek and get -------------------------------------------------------------------------------


def test_peek_returns_at_most_what_is_ready_in_order(engine):
    q = engine.queue("p", "q")
    q.put(["a", "b", "c"])
    assert bodies(q.peek(7)) == [b"a", b"b", b"c"]
    assert bodies(q.peek(2)) == [b"a", b"b"]
    assert q.info().reserved == 0


def test_peek_never_returns_delayed_messages(engine):
    q = engine.queue("p", "q")
    q.put([NewMessage("later", delay=30), "now"])
    assert bodies(q.peek(5)) == [b"now"]


def test_get_reports_ready_delayed_and_reserved(engine, clock):
    q = engine.queue("p", "q")
    reserved, delayed, ready = q.put(["first", NewMessage("d", delay=30), "last"])
    q.reserve(1)  # takes "first"
    assert q.get(ready).status == "ready"
    d = q.get(delayed)
    assert d.status == "delayed" and d.available_at == clock.ms + 30_000
    r = q.get(reserved)
    assert r.status == "reserved" and r.reserved_count == 1 and r.reservation_id
    assert r.reserved_until == clock.ms + 60_000


def test_get_of_a_lapsed_reservation_reports_ready(engine, clock):
    q = engine.queue("p", "q")
    [mid] = q.put([NewMessage("x", timeout=1)])
    q.reserve()
    clock.advance(1)
    assert q.get(mid).status == "ready"


def test_get_unknown_message_or_queue(engine):
    q = engine.queue("p", "q")
    with pytest.raises(QueueNotFound):
        q.get("1")
    q.put(["x"])
    with pytest.raises(MessageNotFound):
        q.get("1700000000000000999")


# -- delete -------------------------------------------------------------------------------------


def test_delete_works_in_every_state(engine):
    q = engine.queue("p", "q")
    ready, delayed, reserved = q.put(["a", NewMessage("b", delay=10), "c"])
    q.reserve(1)  # a
    q.delete_message(ready)  # reserved now
    q.delete_message(delayed)
    q.delete_message(reserved)  # still ready
    assert q.info().size == 0 and q.reserve(5) == [] and q.peek(5) == []


def test_deleting_from_the_middle_keeps_order_and_exact_sizes(engine):
    q = engine.queue("p", "q")
    ids = q.put([str(i) for i in range(6)])
    q.delete_message(ids[1])
    q.delete_message(ids[4])
    assert q.info().size == 4
    assert bodies(q.peek(10)) == [b"0", b"2", b"3", b"5"]
    assert bodies(q.reserve(10)) == [b"0", b"2", b"3", b"5"]
    assert q.info().ready == 0


def test_delete_of_an_unknown_message_is_not_found(engine):
    q = engine.queue("p", "q")
    [mid] = q.put(["x"])
    q.delete_message(mid)
    with pytest.raises(MessageNotFound):
        q.delete_message(mid)


def test_delete_many_is_best_effort(engine):
    q = engine.queue("p", "q")
    a, b, c = q.put(["a", "b", "c"])
    assert q.delete_messages([a, "404", c, a]) == [True, False, True, False]
    assert bodies(q.peek(5)) == [b"b"]


def reserved_twice(q, clock):
    """(first, second): one message reserved, its reservation run out, reserved again."""
    q.put([NewMessage("x", timeout=5)])
    [first] = q.reserve()
    clock.advance(5)
    [second] = q.reserve()
    assert second.id == first.id
    return first, second


def test_delete_with_a_stale_reservation_id_changes_nothing(engine, clock):
    q = engine.queue("p", "q")
    first, second = reserved_twice(q, clock)
    with pytest.raises(NotReserved):
        q.delete_message(first.id, first.reservation_id)
    assert q.get(first.id).status == "reserved"
    q.delete_message(second.id, second.reservation_id)
    with pytest.raises(MessageNotFound):
        q.get(first.id)


# -- touch --------------------------------------------------------------------------------------


def test_touch_keeps_a_message_invisible_and_renews_its_reservation_id(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("x", timeout=10)])
    [m] = q.reserve()
    clock.advance(8)
    lease = q.touch(m.id, m.reservation_id)
    assert lease.reservation_id != m.reservation_id
    assert lease.reserved_until == clock.ms + 10_000 and lease.timeout == 10
    clock.advance(8)  # 16 s after the reserve: past the first deadline, before the new one
    assert q.reserve() == []
    with pytest.raises(NotReserved):
        q.touch(m.id, m.reservation_id)  # the old reservation id is no longer current
    clock.advance(2)
    assert bodies(q.reserve()) == [b"x"]


def test_touch_extends_by_the_reservations_own_timeout(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("x", timeout=10)])
    [m] = q.reserve(timeout=100)
    assert q.touch(m.id).reserved_until == clock.ms + 100_000
    assert q.touch(m.id, timeout=3).reserved_until == clock.ms + 3_000


def test_touch_of_an_unreserved_or_lapsed_message_is_not_reserved(engine, clock):
    q = engine.queue("p", "q")
    [mid] = q.put([NewMessage("x", timeout=1)])
    with pytest.raises(NotReserved):
        q.touch(mid)
    q.reserve()
    clock.advance(1)
    with pytest.raises(NotReserved):
        q.touch(mid)
    with pytest.raises(MessageNotFound):
        q.touch("1700000000000000999")


# -- release ------------------------------------------------------------------------------------


def test_release_requeues_at_the_end(engine):
    q = engine.queue("p", "q")
    q.put(["a", "b"])
    [a] = q.reserve()
    assert q.release(a.id) is True
    assert bodies(q.reserve(5)) == [b"b", b"a"]


def test_release_with_delay_hides_the_message_until_due(engine, clock):
    q = engine.queue("p", "q")
    q.put(["a"])
    [a] = q.reserve()
    q.release(a.id, delay=30)
    assert q.get(a.id).status == "delayed"
    assert q.reserve() == [] and q.info().delayed == 1
    clock.advance(30)
    [again] = q.reserve()
    assert again.id == a.id and again.reserved_count == 2


def test_release_of_an_unreserved_message_changes_nothing(engine):
    q = engine.queue("p", "q")
    [mid] = q.put(["a"])
    assert q.release(mid) is False
    assert q.get(mid).status == "ready"
    with pytest.raises(NotReserved):
        q.release(mid, "some-reservation")
    with pytest.raises(MessageNotFound):
        q.release("1700000000000000999")


def test_release_with_a_stale_reservation_id_changes_nothing(engine, clock):
    q = engine.queue("p", "q")
    first, second = reserved_twice(q, clock)
    with pytest.raises(NotReserved):
        q.release(first.id, first.reservation_id, delay=100)
    assert q.get(first.id).status == "reserved"
    assert q.get(first.id).reservation_id == second.reservation_id


def test_release_without_delay_uses_the_queues_retry_delay(engine, clock):
    q = engine.queue("p", "q")
    q.create(retry_delay=10)
    q.put(["a"])
    [a] = q.reserve()
    q.release(a.id)
    assert q.reserve() == []
    clock.advance(10)
    assert bodies(q.reserve()) == [b"a"]


def test_settle_mixes_deletes_and_releases_with_a_status_each(engine, clock):
    q = engine.queue("p", "q")
    q.put(["a", "b", "c"])
    a, b, c = q.reserve(3)
    settled = q.settle(
        deletes=[(a.id, a.reservation_id), ("nope", None)],
        releases=[(b.id, b.reservation_id, 5), (c.id, "stale", None), (a.id, None, None)],
    )
    assert settled.deleted == ["ok", "not_found"]
    assert settled.released == ["ok", "not_reserved", "not_found"]
    assert q.get(c.id).status == "reserved" and q.get(b.id).status == "delayed"


# -- delay and expiry ---------------------------------------------------------------------------


def test_delayed_message_becomes_visible_when_due_behind_ready_ones(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("late", delay=10), "a"])
    assert bodies(q.reserve(5)) == [b"a"]
    clock.advance(10)
    q.put(["b"])
    assert bodies(q.reserve(5)) == [b"late", b"b"]


def test_queue_default_delay_applies_and_zero_overrides_it(engine, clock):
    q = engine.queue("p", "q")
    q.create(delay=20)
    q.put(["default", NewMessage("now", delay=0)])
    assert bodies(q.reserve(5)) == [b"now"]
    clock.advance(20)
    assert bodies(q.reserve(5)) == [b"default"]


def test_expired_messages_are_never_delivered_and_not_counted(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("short", expires_in=10), NewMessage("long", expires_in=100)])
    clock.advance(10)
    assert q.info().size == 1
    assert bodies(q.peek(5)) == [b"long"]
    assert bodies(q.reserve(5)) == [b"long"]


def test_a_short_lived_message_behind_long_lived_ones_expires_on_time(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("long", expires_in=1000), NewMessage("short", expires_in=10), NewMessage("long2", expires_in=1000)])
    clock.advance(10)
    info = q.info()
    assert (info.size, info.ready) == (2, 2)
    assert bodies(q.reserve(5)) == [b"long", b"long2"]
    assert info.counters["expired"] == 1


@pytest.mark.one_partition
def test_a_single_reserve_drops_and_counts_expired_messages_it_meets_at_the_head(engine, clock):
    """A reserve pops the head itself (maintenance leaves it to the take): expired messages it
    meets there are dropped and counted, and the live one behind them is delivered."""
    q = engine.queue("p", "q")
    q.put([NewMessage("short", expires_in=10), NewMessage("short2", expires_in=10), NewMessage("long", expires_in=1000)])
    clock.advance(10)
    assert bodies(q.reserve(1)) == [b"long"]
    info = q.info()
    assert (info.size, info.ready, info.reserved, info.counters["expired"]) == (1, 0, 1, 2)


@pytest.mark.one_partition
def test_a_single_reserve_skips_the_ids_of_messages_deleted_while_ready(engine):
    q = engine.queue("p", "q")
    first, second, *_ = q.put(["a", "b", "c", "d"])
    q.delete_messages([first, second])
    assert bodies(q.reserve(1)) == [b"c"]
    info = q.info()
    assert (info.size, info.ready, info.reserved) == (2, 1, 1)


@pytest.mark.one_partition
def test_a_requeued_message_keeps_its_original_expiry(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("old", expires_in=20, timeout=5)])
    clock.advance(5)
    q.put([NewMessage("new", expires_in=1000)])
    q.reserve(1)  # old
    clock.advance(5)  # old's reservation lapses: requeued behind "new"
    assert q.info().size == 2
    clock.advance(10)  # old expires while queued behind a longer-lived message
    assert q.info().size == 1
    assert bodies(q.reserve(5)) == [b"new"]


def test_a_message_that_expires_while_reserved_is_dropped_when_its_reservation_ends(engine, clock):
    q = engine.queue("p", "q")
    [mid] = q.put([NewMessage("x", expires_in=10, timeout=30)])
    [m] = q.reserve()
    clock.advance(20)
    assert q.info().reserved == 1  # still held: its consumer may finish and delete it
    q.delete_message(m.id)  # deleting it is still fine
    [mid2] = q.put([NewMessage("y", expires_in=10, timeout=30)])
    q.reserve()
    clock.advance(30)
    assert q.info().size == 0 and q.reserve() == []
    with pytest.raises(MessageNotFound):
        q.get(mid2)
    assert mid


def test_a_delayed_message_that_expires_before_it_is_due_is_never_delivered(engine, clock):
    q = engine.queue("p", "q")
    q.put([NewMessage("x", delay=60, expires_in=30)])
    clock.advance(30)
    assert q.info().size == 0
    clock.advance(30)
    assert q.reserve() == []


def test_the_keys_looked_up_by_id_are_hash_tables_and_skip_lists_however_few(real_engine, redis_client):
    # Redis scans a small hash or sorted set (a listpack) to find a member: a few hundred ids in
    # flight made every lookup in `dlv` cost tens of thousands of instructions, and a reserve's
    # insert into `reserved` as much (lua/includes/queue.lua).
    q = real_engine.queue("p", "q")
    q.put(["a", "b"])
    # a skip list takes ~1 KB: `delayed` and `expiry` only come with the first delay
    assert redis_client.exists("fmq:{p/q}:delayed", "fmq:{p/q}:expiry") == 0
    q.put([NewMessage("c", delay=60)])
    [taken] = q.reserve()
    names = ("msg", "dlv", "reserved", "delayed", "expiry")
    encodings = lambda: [redis_client.object("encoding", f"fmq:{{p/q}}:{name}") for name in names]
    assert encodings() == [b"hashtable", b"hashtable", b"skiplist", b"skiplist", b"skiplist"]
    info = q.info()
    assert (info.ready, info.reserved, info.delayed) == (1, 1, 1)
    assert q.release_reserved() == 1
    q.clear()
    q.put(["d"])  # the first put after a clear makes them again, the first delay its own
    assert encodings() == [b"hashtable", b"hashtable", b"skiplist", None, None]
    [taken] = q.reserve()
    q.release(taken.id, taken.reservation_id, delay=60)
    assert encodings() == [b"hashtable", b"hashtable", b"skiplist", b"skiplist", b"skiplist"]
    assert q.reserve() == [] and q.info().size == 1 and q.info().delayed == 1


def test_an_emptied_queue_counts_no_bytes(real_engine):
    q = real_engine.queue("p", "q")
    q.put(["a"])
    assert q.info().bytes > 0
    [taken] = q.reserve()
    q.delete_message(taken.id, taken.reservation_id)
    assert q.info().bytes == 0


def test_expiry_gets_its_table_alone_and_drops_skip_it_again_once_it_holds_no_message(real_engine, redis_client, clock):
    q = real_engine.queue("p", "q")
    q.put([NewMessage("long", expires_in=600), NewMessage("short", expires_in=60)])  # out of order: indexed
    encodings = lambda: [redis_client.object("encoding", f"fmq:{{p/q}}:{name}") for name in ("delayed", "expiry")]
    assert encodings() == [None, b"skiplist"]
    indexed = lambda: state_fields(redis_client.hget("fmq:{p/q}:meta", "q"))["indexed"]
    assert indexed() == "1"
    for m in q.reserve(2, timeout=10):
        q.delete_message(m.id, m.reservation_id)
    clock.advance(11)  # past the deadlines: the next call maintains in full
    assert q.reserve() == [] and indexed() == "0"


def test_counts_stay_right_after_an_older_version_cleared_the_queue(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.put(["a", NewMessage("b", delay=60)])
    q.reserve()
    # A FerryMQ from before the tables' members clears by unlinking the data and keeps the flags
    # (a rolling upgrade): the members are gone, the flag that says they are there is not.
    redis_client.unlink(*(f"fmq:{{p/q}}:{name}" for name in ("ready", "delayed", "reserved", "expiry", "msg", "dlv")))
    info = q.info()
    assert (info.ready, info.delayed, info.reserved, info.bytes) == (0, 0, 0, 0)
    q.put(["c"])
    assert q.info().size == 1 and [m.body for m in q.reserve()] == [b"c"]


def test_expired_data_is_removed_from_redis(real_engine, keys_holding_messages, clock):
    q = real_engine.queue("p", "q")
    q.put([NewMessage(f"m{i}", expires_in=10) for i in range(50)])
    q.put([NewMessage("d", expires_in=10, delay=5)])
    q.reserve(5, timeout=60)
    clock.advance(61)
    assert q.info().size == 0
    assert keys_holding_messages("p", "q") == ["meta"]


@pytest.mark.parametrize("n", [1, 3])
def test_messages_taken_with_delete_leave_nothing_in_redis_delivered_before_or_not(real_engine, keys_holding_messages, n):
    # A first delivery has no delivery state (the take skips deleting one); a message released
    # back to the queue has one, which the take with delete must remove with the message.
    q = real_engine.queue("p", "q")
    q.put([f"m{i}" for i in range(2 * n)])
    for message in q.reserve(n):  # the first n delivered once, then back in the queue
        q.release(message.id, message.reservation_id)
    taken = q.reserve(2 * n, delete=True) if n > 1 else [*q.reserve(1, delete=True), *q.reserve(1, delete=True)]
    assert sorted(m.reserved_count for m in taken) == [1] * n + [2] * n
    assert keys_holding_messages("p", "q") == ["meta"]


# -- dead-lettering -----------------------------------------------------------------------------


def test_message_out_of_deliveries_moves_to_the_dead_letter_queue(engine, clock):
    q = engine.queue("p", "q")
    q.create(max_deliveries=2, dead_letter_queue="dead", timeout=5)
    [mid] = q.put([NewMessage("x", content_type="json")])
    q.reserve()
    clock.advance(5)
    [m] = q.reserve()
    assert m.reserved_count == 2
    clock.advance(5)  # second delivery lapses: out of deliveries
    assert q.reserve() == []
    [dead] = engine.queue("p", "dead").reserve()
    assert (dead.body, dead.content_type, dead.reserved_count) == (b"x", "json", 1)
    assert q.info().counters["dead"] == 1 and q.info().size == 0
    with pytest.raises(MessageNotFound):
        q.get(mid)
    assert "dead" in [r.name for r in engine.list_queues("p")]


def test_release_of_the_last_delivery_dead_letters_at_once(engine):
    q = engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead")
    q.put(["x"])
    [m] = q.reserve()
    q.release(m.id, delay=60)
    assert q.info().size == 0
    assert bodies(engine.queue("p", "dead").peek()) == [b"x"]


def test_message_out_of_deliveries_without_dead_letter_queue_is_dropped(engine, clock):
    q = engine.queue("p", "q")
    q.create(max_deliveries=1, timeout=1)
    q.put(["x"])
    q.reserve()
    clock.advance(1)
    assert q.reserve() == [] and q.info().size == 0
    assert [r.name for r in engine.list_queues("p")] == ["q"]


def test_deleting_a_queue_first_delivers_its_pending_dead_letters(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead")
    q.put(["x"])
    [m] = q.reserve()
    # Simulate a crash after the script queued the dead letter but before it was moved.
    outbox = q._verbs.keys.outbox
    redis_client.rpush(outbox, b"dlq\tdead\tsrcqueue:1700000000000000007:1\n1700000000000|000060000|1800000000000|\nlost?")
    q.delete()
    assert bodies(real_engine.queue("p", "dead").peek(5)) == [b"lost?"]
    assert m


def test_a_dead_letter_moved_twice_is_stored_once(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.put(["keep"])
    entry = b"dlq\tdead\tsrcqueue:1700000000000000007:2\n1700000000000|000060000|1800000000000|\nonce"
    redis_client.rpush(q._verbs.keys.outbox, entry, entry)
    exists, _, moved = q.maintain()
    assert exists and moved == 2
    assert bodies(real_engine.queue("p", "dead").peek(5)) == [b"once"]


def test_sync_long_poll_returns_once_another_client_puts(real_engine, redis_url, clock):
    import threading
    import time

    import redis

    from ferrymq.engine import Engine

    def produce() -> None:
        time.sleep(0.1)
        client = redis.Redis.from_url(redis_url)
        Engine(client, clock=clock).queue("p", "q").put(["late"])
        client.close()

    threading.Thread(target=produce).start()
    started = time.monotonic()
    [message] = real_engine.queue("p", "q").reserve(wait=3)
    assert message.body == b"late"
    assert time.monotonic() - started < 1.0  # polls with a short backoff, not the whole wait


def test_absolute_times_schedule_put_release_and_touch(engine, clock):
    q = engine.queue("p", "q")
    [later] = q.put([NewMessage("later", available_at=clock.ms + 20_000)])
    [past] = q.put([NewMessage("past", available_at=clock.ms - 5_000)])  # the past means now
    assert q.get(later).available_at == clock.ms + 20_000 and q.get(past).status == "ready"
    [m] = q.reserve()
    assert m.id == past
    lease = q.touch(m.id, m.reservation_id, reserved_until=clock.ms + 7_000)
    assert lease.reserved_until == clock.ms + 7_000 and lease.timeout == 7
    q.release(m.id, lease.reservation_id, available_at=clock.ms + 3_000)
    assert q.get(m.id).available_at == clock.ms + 3_000
    with pytest.raises(InvalidArgument):
        q.put([NewMessage("x", delay=1, available_at=clock.ms)])
    week, day = 7 * 86_400_000, 86_400_000
    with pytest.raises(InvalidArgument) as too_far:
        q.put([NewMessage("x", available_at=clock.ms + week + 120_000)])
    assert too_far.value.field == "messages[0].available_at"
    with pytest.raises(InvalidArgument):
        q.touch(m.id, reserved_until=clock.ms + day + 120_000)
    with pytest.raises(InvalidArgument):
        q.release(m.id, available_at=clock.ms + week + 120_000)
    clock.advance(20)
    assert sorted(x.body for x in q.reserve(5)) == [b"later", b"past"]


def test_pull_reports_the_backlog_left_after_its_batch(engine, clock, backend):
    q = engine.queue("p", "q")
    q.put(["a", "b", "c", NewMessage("d", delay=10)])
    pulled = q.pull(2, timeout=30)
    assert [m.body for m in pulled.messages] == [b"a", b"b"]
    b = pulled.backlog
    assert (b.ready, b.delayed, b.reserved, b.size) == (1, 1, 2, 4)
    assert b.oldest_at == clock.ms
    if backend == "redis":  # fakeredis has no MEMORY USAGE: 0 there, as documented
        assert b.bytes > 0
    empty = engine.queue("p", "none").pull(5)
    assert empty.messages == [] and empty.backlog.size == 0


def test_info_reports_bytes_and_the_oldest_message(engine, clock, backend):
    q = engine.queue("p", "q")
    q.put(["first"])
    clock.advance(5)
    q.put(["second"])
    info = q.info()
    assert info.oldest_at == clock.ms - 5_000
    assert (info.bytes > 0) == (backend == "redis")


def test_push_by_queue_id_reaches_only_that_incarnation_of_the_queue(engine):
    q = engine.queue("p", "q")
    first = q.ensure().id
    assert len(q.push(["a"], queue_id=first).ids) == 1
    q.delete()
    with pytest.raises(QueueNotFound):
        q.push(["b"], queue_id=first)  # deleted
    second = q.ensure().id
    with pytest.raises(QueueNotFound):
        q.push(["b"], queue_id=first)  # deleted, and created again under another id
    assert q.info().size == 0
    assert len(q.push(["c"], queue_id=second).ids) == 1


def test_push_reports_the_backlog_after_its_batch(engine, clock):
    q = engine.queue("p", "q")
    pushed = q.push(["a", NewMessage("b", delay=5)])
    assert len(pushed.ids) == 2 and pushed.ids == sorted(pushed.ids)
    assert (pushed.backlog.ready, pushed.backlog.delayed, pushed.backlog.size) == (1, 1, 2)
    assert pushed.backlog.oldest_at == clock.ms


def test_moving_a_dead_letter_reads_the_outbox_once(real_engine, redis_client):
    """A drain that finds fewer entries than a page moves them and stops: no second LRANGE to
    learn that the outbox is empty (a round trip per dead letter, alert message or size report)."""
    q = real_engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead")
    q.put(["x"])
    [m] = q.reserve()
    redis_client.config_resetstat()
    q.release(m.id, delay=60)
    assert redis_client.info("commandstats")["cmdstat_lrange"]["calls"] == 1
    assert bodies(real_engine.queue("p", "dead").peek()) == [b"x"]


# -- delete_and_reserve ---------------------------------------------------------------------------


def test_delete_and_reserve_deletes_the_finished_message_and_reserves_the_next(engine):
    q = engine.queue("p", "q")
    q.put(["a", "b", "c"])
    [first] = q.reserve()
    [second] = q.delete_and_reserve(first.id, first.reservation_id)
    with pytest.raises(MessageNotFound):
        q.get(first.id)
    assert second.body != first.body and second.reservation_id and second.reserved_count == 1
    assert q.get(second.id).status == RESERVED
    taken = q.delete_and_reserve(second.id, second.reservation_id, 5, timeout=30)
    assert bodies([first, second, *taken]) and sorted(bodies([first, second, *taken])) == [b"a", b"b", b"c"]
    assert taken[0].timeout == 30
    assert q.delete_and_reserve(taken[0].id, taken[0].reservation_id) == []  # nothing left: no wait
    info = q.info()
    assert (info.ready, info.reserved, info.size) == (0, 0, 0)


def test_delete_and_reserve_reserves_nothing_when_the_delete_is_refused(engine, clock):
    q = engine.queue("p", "q")
    q.put(["a", "b"])
    [first] = q.reserve(timeout=10)
    clock.advance(11)  # the reservation lapsed: the message is back
    with pytest.raises(NotReserved):
        q.delete_and_reserve(first.id, first.reservation_id)
    with pytest.raises(MessageNotFound):
        q.delete_and_reserve("0" * 19, None)
    info = q.info()
    assert (info.ready, info.reserved) == (2, 0)  # neither call reserved anything


def test_delete_and_reserve_on_a_paused_queue_deletes_and_reserves_nothing(engine):
    q = engine.queue("p", "q")
    q.put(["a", "b"])
    [first] = q.reserve()
    q.update(paused=True)
    with pytest.raises(DeliveryPaused):
        q.delete_and_reserve(first.id, first.reservation_id)
    with pytest.raises(MessageNotFound):
        q.get(first.id)
    assert q.info().ready == 1
