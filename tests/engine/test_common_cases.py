"""Put, reserve and delete try their common case's script first (lua/put_ready-3.lua,
reserve_ready-7.lua, delete_reserved-5.lua: fewer keys) and send their full script only when that
one answers FULL, having written nothing. Which scripts ran is read from Redis's slow log with
every command logged; each case lands its messages exactly once (real Redis)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from ferrymq.engine import Alert, FakeClock, MessageNotFound, NewMessage, NotReserved
from ferrymq.engine.core import state_fields


def scripts_run(client: Any, action: Callable[[], Any]) -> list[str]:
    """The scripts Redis ran during ``action``, in order (function names without the library's)."""
    threshold = client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    client.config_set("slowlog-log-slower-than", 0)
    client.slowlog_reset()
    try:
        action()
    finally:
        client.config_set("slowlog-log-slower-than", threshold)
    commands = [entry["command"].split() for entry in reversed(client.slowlog_get(128))]
    return [words[1].decode().split("_", 2)[2] for words in commands if words[0].upper() == b"FCALL"]


@pytest.fixture
def queue(real_engine: Any) -> Any:
    q = real_engine.queue("common", "q")
    q.put(["first"])  # created, its tables in place, maintained once
    return q


def test_a_plain_put_reserve_and_delete_each_run_their_common_case(queue, redis_client):
    assert scripts_run(redis_client, lambda: queue.put(["a", NewMessage("b", timeout=5, content_type="text/plain")])) \
        == ["put_ready"]
    taken: list[Any] = []
    assert scripts_run(redis_client, lambda: taken.extend(queue.reserve(3))) == ["reserve_ready"]
    assert [m.body for m in taken] == [b"first", b"a", b"b"]
    assert scripts_run(redis_client, lambda: queue.delete_message(taken[0].id, taken[0].reservation_id)) \
        == ["delete_reserved"]
    with pytest.raises(MessageNotFound):  # the same reservation again: the message is gone
        queue.delete_message(taken[0].id, taken[0].reservation_id)
    assert queue.info().reserved == 2


def expire_it_first(q: Any, clock: FakeClock) -> list[Any]:
    return [NewMessage("x", expires_in=60)]  # expires before "first", queued behind it


def let_a_reservation_lapse(q: Any, clock: FakeClock) -> list[Any]:
    q.reserve(1, timeout=1)
    clock.advance(2)  # maintenance is due: "first" goes back to the FIFO, ahead of "x"
    return ["x"]


def set_a_default_delay(q: Any, clock: FakeClock) -> list[Any]:
    q.update(delay=5)
    return ["x"]


@pytest.mark.parametrize("setup", [expire_it_first, let_a_reservation_lapse, set_a_default_delay])
def test_a_put_that_needs_more_than_the_common_case_runs_put_and_lands_once(queue, clock, redis_client, setup):
    messages = setup(queue, clock)
    assert scripts_run(redis_client, lambda: queue.put(messages)) == ["put_ready", "put"]
    clock.advance(10)  # anything delayed is due
    assert sorted(m.body for m in queue.reserve(10)) == [b"first", b"x"]


def test_a_delayed_message_goes_straight_to_put(queue, clock, redis_client):
    assert scripts_run(redis_client, lambda: queue.put(["a", NewMessage("x", delay=5)])) == ["put"]
    clock.advance(10)
    assert [m.body for m in queue.reserve(10)] == [b"first", b"a", b"x"]


def test_settings_that_need_put_send_the_queue_straight_to_put_for_a_while(queue, redis_client):
    queue.update(delay=5)
    assert scripts_run(redis_client, lambda: queue.put(["x"])) == ["put_ready", "put"]
    assert scripts_run(redis_client, lambda: queue.put(["y"])) == ["put"]  # remembered (UNCOMMON_TTL)
    assert scripts_run(redis_client, lambda: queue.reserve(1)) == ["reserve_ready"]  # per script


def test_a_put_to_a_queue_with_alerts_runs_put_which_fires_them(real_engine, queue):
    queue.add_alerts([Alert("fixed", 2, "alerts")])
    queue.put(["x"])  # the size goes from 1 to 2
    [alert] = real_engine.queue("common", "alerts").reserve(1)
    assert json.loads(alert.body)["queue_size"] == 2


def test_a_put_to_a_missing_queue_creates_it_through_put(real_engine, redis_client):
    q = real_engine.queue("common", "new")
    assert scripts_run(redis_client, lambda: q.put(["x"])) == ["put_ready", "admit", "put", "register"]
    assert scripts_run(redis_client, lambda: q.put(["y"])) == ["put_ready"]
    assert [m.body for m in q.reserve(2)] == [b"x", b"y"]


def test_after_a_reserve_that_maintained_a_drain_is_back_on_the_common_case(queue, clock, redis_client):
    """A reserve's maintenance leaves the head to its take; the reserve then sets the next moment
    of maintenance itself, or every reserve after it would find maintenance due (a drain that
    deletes as it reserves never runs another script that would)."""
    queue.put(["a", "b"])
    queue.reserve(1, timeout=1)
    clock.advance(2)  # "first" lapsed: maintenance is due
    assert scripts_run(redis_client, lambda: queue.reserve(1, delete=True)) == ["reserve_ready", "reserve"]
    assert scripts_run(redis_client, lambda: queue.reserve(1, delete=True)) == ["reserve_ready"]
    assert scripts_run(redis_client, lambda: queue.reserve(1, delete=True)) == ["reserve_ready"]
    assert queue.reserve(1) == []


def test_deletes_with_a_maintenance_due_run_settle(queue, clock, redis_client):
    [m] = queue.reserve(1, timeout=5)
    queue.put(["a"])
    [a] = queue.reserve(1, timeout=1)
    clock.advance(2)  # "a" lapsed, "first" is still reserved
    assert scripts_run(redis_client, lambda: queue.delete_message(m.id, m.reservation_id)) \
        == ["delete_reserved", "settle"]
    with pytest.raises(NotReserved):  # its reservation lapsed: it is back in the FIFO
        queue.delete_message(a.id, a.reservation_id)


def test_a_steady_reserve_writes_nothing_to_the_queue_state(queue, redis_client):
    """A reserve changes none of the state's numbers (a delivery is counted when its reservation
    ends: lua/includes/state.lua LIVE_UNCOUNTED), so once the first reservation has set the
    moment of the next maintenance, a reserve leaves `q` unwritten: no HSET, nothing to replicate."""
    queue.put(["a", "b"])
    queue.reserve(1)
    before = redis_client.hget("fmq:{common/q}:meta", "q")
    hsets = lambda: redis_client.info("commandstats").get("cmdstat_hset", {}).get("calls", 0)
    calls = hsets()
    assert scripts_run(redis_client, lambda: queue.reserve(1)) == ["reserve_ready"]
    assert redis_client.hget("fmq:{common/q}:meta", "q") == before and hsets() == calls
    assert queue.info().counters["reserved"] == 2


def test_deletes_of_reserved_messages_leave_the_state_unwritten_and_count_in_both_counters(real_engine, queue,
                                                                                             redis_client):
    """delete_reserved counts what it deletes in meta `c_done` (one HINCRBY), not in `q`: each
    way it is called (one delete with or without a reservation id, a batch under one id, a batch
    under several) leaves `q` as it was, and info and stats count each delete and its delivery."""
    queue.put([f"m{i}" for i in range(7)])
    first = queue.reserve(4)
    second = queue.reserve(4)
    state = lambda: redis_client.hget("fmq:{common/q}:meta", "q")
    before = state()
    for delete in (lambda: queue.delete_message(first[0].id, first[0].reservation_id),
                   lambda: queue.delete_message(first[1].id),
                   lambda: queue.settle(deletes=[(m.id, m.reservation_id) for m in first[2:]]),
                   lambda: queue.settle(deletes=[(first[3].id, first[3].reservation_id),  # taken: status 0
                                                 (second[0].id, second[0].reservation_id)])):
        assert scripts_run(redis_client, delete) == ["delete_reserved"]
        assert state() == before
    assert redis_client.hget("fmq:{common/q}:meta", "c_done") == b"5"
    [stats] = real_engine.stats("common")
    info = queue.info().counters
    assert (info["deleted"], info["reserved"], "done" in info) == (5, 8, False)
    assert (stats.counters["deleted"], stats.counters["reserved"], "done" in stats.counters) == (5, 8, False)
    assert (stats.reserved, stats.size) == (3, 3)


def test_a_single_reserve_that_changes_the_state_writes_it(real_engine, redis_client):
    """The common case skips writing the state only when the reserve changed none of it: taking a
    message requeued at the front counts FRONT down, a reserve with delete counts the delete and
    the delivery, and both land."""
    q = real_engine.queue("common", "front")
    q.create(requeue="front")
    q.put(["a", "b", "c"])
    [a] = q.reserve(1)
    q.release(a.id, a.reservation_id)  # back at the head
    state = lambda: state_fields(redis_client.hget("fmq:{common/front}:meta", "q"))
    assert state()["front"] == "1"
    taken: list[Any] = []
    assert scripts_run(redis_client, lambda: taken.extend(q.reserve(1))) == ["reserve_ready"]
    assert [m.body for m in taken] == [b"a"] and state()["front"] == "0"
    assert scripts_run(redis_client, lambda: taken.extend(q.reserve(1, delete=True))) == ["reserve_ready"]
    counters = q.info().counters
    assert (counters["deleted"], counters["reserved"]) == (1, 3)


def test_a_single_delete_under_a_released_reservation_changes_nothing(queue, redis_client):
    """The common case of one delete learns from its ZREM whether the message was reserved: a
    released one still carries the old reservation id in its delivery state, and stays queued."""
    [m] = queue.reserve(1)
    queue.release(m.id, m.reservation_id)

    def delete() -> None:
        with pytest.raises(NotReserved):
            queue.delete_message(m.id, m.reservation_id)

    assert scripts_run(redis_client, delete) == ["delete_reserved"]
    assert queue.get(m.id).status == "ready"
    assert [again.body for again in queue.reserve(1)] == [b"first"]


def test_a_single_delete_with_no_reservation_id_of_a_reserved_message_is_the_common_case(real_engine, queue,
                                                                                        redis_client):
    """IronMQ v1's DELETE, a Cloudflare ack: no reservation id. A reserved message is deleted by
    delete_reserved alone, its delivery counted once."""
    [m] = queue.reserve(1)
    assert scripts_run(redis_client, lambda: queue.delete_message(m.id)) == ["delete_reserved"]
    with pytest.raises(MessageNotFound):
        queue.get(m.id)
    [stats] = real_engine.stats("common")
    assert (stats.counters["deleted"], stats.counters["reserved"], stats.reserved, stats.size) == (1, 1, 0, 0)


@pytest.mark.parametrize("state", ["ready", "delayed", "unknown"])
def test_a_single_delete_with_no_reservation_id_of_another_state_goes_to_settle(real_engine, queue, redis_client,
                                                                                state):
    """Not reserved: delete_reserved writes nothing and settle decides (it has the keys)."""
    if state == "delayed":
        [message_id] = queue.put([NewMessage("later", delay=60)])
    elif state == "ready":
        [message_id] = queue.put(["b"])  # behind "first"
    else:
        message_id = "1765000000000000000"
    deleted = []

    def delete() -> None:
        try:
            queue.delete_message(message_id)
            deleted.append(True)
        except MessageNotFound:
            deleted.append(False)

    assert scripts_run(redis_client, delete) == ["delete_reserved", "settle"]
    assert deleted == [state != "unknown"]
    [stats] = real_engine.stats("common")
    assert (stats.size, stats.counters["deleted"]) == ((1, 0) if state == "unknown" else (1, 1))


def test_a_single_delete_of_an_unknown_id_is_not_found(queue, redis_client):
    with pytest.raises(MessageNotFound):
        queue.delete_message("1765000000000000000", "some-reservation")
    assert queue.info().size == 1


WRONG_RID = "0123456789abcdef"
"""A reservation id of the engine's form (16 hex digits) that is nobody's."""


def test_a_batch_delete_decides_each_id_on_the_common_case(queue, real_engine, redis_client):
    """The common case of a batch: the token and a ZREM per id decide it, the ids that fail get
    their status from HEXISTS; nothing else is touched."""
    queue.put(["a", "b", "c"])
    first, a, b, c = queue.reserve(4)
    queue.release(b.id, b.reservation_id)  # still carries its old reservation id: not reserved
    items = [(first.id, first.reservation_id), (a.id, WRONG_RID), (b.id, b.reservation_id),
             ("1765000000000000000", WRONG_RID), (c.id, c.reservation_id)]
    settled: list[Any] = []
    assert scripts_run(redis_client, lambda: settled.append(queue.settle(deletes=items))) == ["delete_reserved"]
    assert settled[0].deleted == ["ok", "not_reserved", "not_reserved", "not_found", "ok"]
    assert queue.get(a.id).status == "reserved"
    assert queue.get(b.id).status == "ready"
    [stats] = real_engine.stats("common")
    assert (stats.counters["deleted"], stats.reserved, stats.ready) == (2, 1, 1)


def test_a_batch_under_one_reservation_decides_each_id_on_the_common_case(queue, redis_client):
    """A batch from one reserve shares its reservation id (sent once): a message whose
    reservation changed since (a touch) is not deleted under the old one."""
    queue.put(["a", "b", "c"])
    first, a, b, c = queue.reserve(4)
    renewed = queue.touch(a.id, a.reservation_id)
    queue.release(c.id, c.reservation_id)  # still carries the shared id in its delivery state
    items = [(m.id, first.reservation_id) for m in (first, a, b, c)] + [("1765000000000000000", first.reservation_id)]
    settled: list[Any] = []
    assert scripts_run(redis_client, lambda: settled.append(queue.settle(deletes=items))) == ["delete_reserved"]
    assert settled[0].deleted == ["ok", "not_reserved", "ok", "not_reserved", "not_found"]
    assert queue.get(c.id).status == "ready"
    queue.delete_message(a.id, renewed.reservation_id)
    assert queue.info().size == 1


@pytest.mark.parametrize("rid", ["|" + "a" * 15, "a" * 15 + "|", "é" * 16, "é" + "a" * 15])
def test_a_reservation_id_with_a_bar_or_beyond_ascii_deletes_nothing(queue, redis_client, rid):
    """16 characters, but not the engine's: a bar could span fields of the delivery state
    (settle decides those), and a wide character makes more bytes than any token has."""
    [m] = queue.reserve(1)
    settled: list[Any] = []
    path = scripts_run(redis_client, lambda: settled.append(queue.settle(deletes=[(m.id, rid)])))
    assert path == (["settle"] if "|" in rid else ["delete_reserved"])
    assert settled[0].deleted == ["not_reserved"]
    assert queue.get(m.id).status == "reserved"


def test_an_error_reply_of_the_common_case_is_not_sent_again(queue, redis_client):
    """A script's own error (a touch under a reservation that is not current) is raised from the
    first FCALL's reply, not sent a second time."""
    [m] = queue.reserve(1)

    def touch() -> None:
        with pytest.raises(NotReserved):
            queue.touch(m.id, WRONG_RID)

    assert scripts_run(redis_client, touch) == ["touch"]


@pytest.mark.parametrize("n", [1, 2])
def test_a_reservation_id_not_of_the_engines_form_goes_to_settle(queue, redis_client, n):
    """The common case finds the reservation id in the delivery state with a plain find, which
    only the engine's own form (16 characters, no bar) makes exact: anything else is settle's,
    such as an id spelling the message's timeout field, 9 digits, which must delete nothing."""
    taken = queue.reserve(1, timeout=30)
    if n == 2:
        queue.put(["a"])
        taken += queue.reserve(1, timeout=30)
    items = [(m.id, "000030000") for m in taken]
    settled: list[Any] = []
    assert scripts_run(redis_client, lambda: settled.append(queue.settle(deletes=items))) == ["settle"]
    assert settled[0].deleted == ["not_reserved"] * n
    assert all(queue.get(m.id).status == "reserved" for m in taken)


@pytest.mark.parametrize("maintenance_due", [False, True])
def test_a_repeated_id_in_a_batch_gets_what_its_first_occurrence_decided(queue, clock, redis_client, maintenance_due):
    """Whichever script decides a batch, a repeated id answers not_found and changes nothing, even
    when its first occurrence failed and the repeat holds the reservation. (The common case
    takes distinct ids only: settle decides a batch with a repeat.)"""
    queue.put(["a"])
    [first, a] = queue.reserve(2, timeout=5)
    if maintenance_due:
        queue.put(["lapsing"])
        queue.reserve(1, timeout=1)
        clock.advance(2)
    items = [(first.id, WRONG_RID), (first.id, first.reservation_id), (a.id, a.reservation_id), (a.id, WRONG_RID)]
    settled: list[Any] = []
    assert scripts_run(redis_client, lambda: settled.append(queue.settle(deletes=items))) == ["settle"]
    assert settled[0].deleted == ["not_reserved", "not_found", "ok", "not_found"]
    assert queue.get(first.id).status == "reserved"


def test_the_oldest_message_is_found_past_a_ghost_a_take_left_at_the_head(real_engine, clock, redis_client):
    """A message deleted while ready leaves its id in the FIFO (a ghost) until a take or a
    maintenance meets it at the head. Takes with no maintenance due can pop the messages before
    it, leaving it at the head: the backlog looks past it for the oldest message's enqueue time
    (it read 0 there: Cloudflare's oldest_message_timestamp_ms with a message waiting)."""
    q = real_engine.queue("common", "ghost")
    q.put(["a", "b", "c", "d"])
    q.delete_message(q.peek(3)[2].id)  # "c": a ghost behind "a" and "b"
    q.reserve(1)  # maintains (the head is alive) and takes "a"
    assert scripts_run(redis_client, lambda: q.reserve(1)) == ["reserve_ready"]  # "b": the ghost is the head
    info = q.info()
    assert (info.ready, info.oldest_at) == (1, clock.ms)
