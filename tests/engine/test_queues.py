"""Queue verbs: create, update, ensure, info, list, clear, delete."""

from __future__ import annotations

import pytest

from ferrymq.engine import AlreadyExists, Engine, InvalidArgument, NewMessage, QueueNotFound


def test_create_reports_defaults_and_a_32_hex_id(engine):
    info = engine.queue("p", "orders").create()
    assert info.created is True
    assert len(info.id) == 32 and int(info.id, 16) >= 0
    assert info.settings.timeout == 60 and info.settings.expires_in == 7 * 86400
    assert info.settings.max_deliveries == 0 and info.settings.dead_letter_queue == ""
    assert (info.size, info.total_messages) == (0, 0)


def test_create_of_an_existing_queue_fails(engine):
    engine.queue("p", "orders").create()
    with pytest.raises(AlreadyExists):
        engine.queue("p", "orders").create()


def test_update_of_a_missing_queue_fails(engine):
    with pytest.raises(QueueNotFound):
        engine.queue("p", "nope").update(timeout=5)


def test_update_changes_only_the_given_settings(engine):
    q = engine.queue("p", "orders")
    q.create(timeout=10, delay=2)
    info = q.update(delay=0, max_deliveries=3, dead_letter_queue="dead", paused=True)
    s = info.settings
    assert (s.timeout, s.delay, s.max_deliveries, s.dead_letter_queue, s.paused) == (10, 0, 3, "dead", True)
    assert info.created is False


def test_ensure_creates_then_updates(engine):
    q = engine.queue("p", "orders")
    first = q.ensure(retry_delay=1.5)
    second = q.ensure(expires_in=120)
    assert first.created and not second.created and first.id == second.id
    assert second.settings.retry_delay == 1.5 and second.settings.expires_in == 120


def test_attributes_are_stored_and_removed_verbatim(engine):
    q = engine.queue("p", "orders")
    q.create(attrs={"consumer": '{"type":"worker"}', "other": "x"})
    info = q.update(attrs={"other": None})
    assert info.attrs == {"consumer": '{"type":"worker"}'}


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("timeout", 0),
        ("timeout", 86401),
        ("delay", -1),
        ("expires_in", 31 * 86400),
        ("max_deliveries", -1),
        ("max_deliveries", 1.5),
        ("paused", "yes"),
        ("timeout", "60"),
        ("timeout", float("nan")),
        ("dead_letter_queue", "orders"),
        ("dead_letter_queue", "bad\nname"),
    ],
)
def test_bad_settings_are_rejected_before_anything_is_written(engine, setting, value):
    q = engine.queue("p", "orders")
    with pytest.raises(InvalidArgument) as err:
        q.create(**{setting: value})
    assert err.value.field == setting
    with pytest.raises(QueueNotFound):
        q.info()


@pytest.mark.parametrize("name", ["", "a\x00b", "tab\tname", "x" * 256, 7])
def test_bad_queue_names_are_rejected(engine, name):
    with pytest.raises(InvalidArgument):
        engine.queue("p", name)
    with pytest.raises(InvalidArgument):  # and again: a refused name is never held
        engine.queue("p", name)


def test_a_queues_verbs_are_built_once_and_stay_usable(redis_client):
    engine = Engine(redis_client, prefix="held-queues")
    q = engine.queue("p", "held")
    assert engine.queue("p", "held")._verbs is q._verbs and engine.queue("p", "other")._verbs is not q._verbs
    long = "x" * 200  # a name any client may choose in a path: not held
    assert engine.queue("p", long)._verbs is not engine.queue("p", long)._verbs
    q.put(["x"])
    assert [m.body for m in engine.queue("p", "held").reserve()] == [b"x"]
    q.delete()


def test_names_with_brace_slash_and_percent_are_distinct_queues(engine):
    names = ["a/b", "a%2Fb", "}x", "{x}", "a", "%"]
    for name in names:
        engine.queue("p", name).put([name])
    for name in names:
        [message] = engine.queue("p", name).peek(5)
        assert message.body == name.encode()


def test_info_of_a_missing_queue_is_not_found(engine):
    with pytest.raises(QueueNotFound):
        engine.queue("p", "ghost").info()


def test_size_counts_ready_delayed_and_reserved(engine):
    q = engine.queue("p", "orders")
    q.put(["a", "b", "c", NewMessage("d", delay=60)])
    q.reserve(1)
    info = q.info()
    assert (info.ready, info.delayed, info.reserved, info.size, info.total_messages) == (2, 1, 1, 4, 4)


def test_list_is_name_ordered_paged_and_per_project(engine):
    for name in ["c", "a", "b", "d"]:
        engine.queue("p", name).create()
    engine.queue("other", "zzz").create()
    first = engine.list_queues("p", page=0, per_page=3)
    second = engine.list_queues("p", page=1, per_page=3)
    assert [q.name for q in first] == ["a", "b", "c"]
    assert [q.name for q in second] == ["d"]
    assert engine.list_queues("p", page=2, per_page=3) == []
    assert engine.count_queues("p") == 4
    assert all(len(q.id) == 32 for q in first)


def test_list_after_a_name_and_by_prefix(engine):
    for name in ["cars", "cats", "ca", "dogs", "c", "é-queue"]:
        engine.queue("p", name).create()

    def names(**kwargs):
        return [q.name for q in engine.list_queues("p", **kwargs)]

    assert names(prefix="ca") == ["ca", "cars", "cats"]
    assert names(after="cars") == ["cats", "dogs", "é-queue"]
    assert names(after="cb") == ["dogs", "é-queue"]  # a name no queue has
    assert names(after="car", prefix="ca") == ["cars", "cats"]
    assert names(after="b", prefix="ca", per_page=2) == ["ca", "cars"]
    assert names(after="ca", prefix="ca", per_page=1, page=1) == ["cats"]
    assert names(after="d", prefix="ca") == []
    assert names(prefix="é") == ["é-queue"]


def test_put_creates_and_lists_a_queue(engine):
    engine.queue("p", "implicit").put(["x"])
    assert [q.name for q in engine.list_queues("p")] == ["implicit"]


def test_put_without_create_to_a_missing_queue_fails(engine):
    with pytest.raises(QueueNotFound):
        engine.queue("p", "nope").put(["x"], create=False)
    assert engine.list_queues("p") == []


def test_a_queue_put_creates_gets_the_settings_asked_for_and_an_existing_one_keeps_its_own(engine):
    created = engine.queue("p", "new")
    created.put(["x"], new_queue={"requeue": "front", "timeout": 5})
    assert (created.info().settings.requeue, created.info().settings.timeout) == ("front", 5)
    existing = engine.queue("p", "old")
    existing.create(timeout=9)
    existing.put(["x"], new_queue={"requeue": "front", "timeout": 5})
    assert (existing.info().settings.requeue, existing.info().settings.timeout) == ("end", 9)
    with pytest.raises(InvalidArgument):
        engine.queue("p", "bad").put(["x"], new_queue={"requeue": "middle"})


def test_reserve_and_peek_may_require_the_queue_to_exist(engine):
    q = engine.queue("p", "nope")
    with pytest.raises(QueueNotFound):
        q.reserve(must_exist=True, wait=1)  # at once, not after the wait
    with pytest.raises(QueueNotFound):
        q.peek(must_exist=True)
    q.put(["x"])
    assert [m.body for m in q.peek(must_exist=True)] == [b"x"]
    assert [m.body for m in q.reserve(must_exist=True)] == [b"x"]
    assert q.reserve(must_exist=True) == []


def test_find_queue_by_id(engine):
    info = engine.queue("p", "orders").create()
    assert engine.find_queue("p", info.id).name == "orders"
    assert engine.find_queue("other", info.id) is None
    assert engine.find_queue("p", "0" * 32) is None


def test_clear_removes_every_message_and_keeps_settings_and_total(engine, clock):
    q = engine.queue("p", "orders")
    q.create(timeout=5)
    q.put(["a", "b", NewMessage("c", delay=9)])
    q.reserve(1)
    assert q.clear() == 3
    info = q.info()
    assert (info.size, info.total_messages, info.settings.timeout) == (0, 3, 5)
    assert q.reserve(5) == [] and q.peek(5) == []
    clock.advance(10)
    assert q.reserve(5) == []
    assert q.put(["d"])  # still usable
    assert [m.body for m in q.reserve(5)] == [b"d"]


def test_clear_of_a_missing_queue_is_not_found(engine):
    with pytest.raises(QueueNotFound):
        engine.queue("p", "ghost").clear()


def test_delete_removes_all_data_and_the_listing(engine):
    q = engine.queue("p", "orders")
    q.put(["a", NewMessage("b", delay=5)])
    q.reserve(1)
    q.delete()
    assert engine.list_queues("p") == []
    with pytest.raises(QueueNotFound):
        q.info()
    with pytest.raises(QueueNotFound):
        q.delete()


def test_a_queue_deleted_and_created_again_gets_a_new_id_and_new_message_ids(engine):
    # Same millisecond (the fake clock stands still): ids must still not repeat.
    q = engine.queue("p", "orders")
    first_id = q.create().id
    old_ids = q.put(["a", "b"])
    q.delete()
    second = q.create()
    new_ids = q.put(["c", "d"])
    assert second.id != first_id
    assert engine.find_queue("p", first_id) is None
    assert engine.find_queue("p", first_id, name="orders") is None  # the name it was found under
    assert engine.find_queue("p", second.id).name == "orders"
    assert engine.find_queue("p", second.id, name="orders").name == "orders"
    assert not set(old_ids) & set(new_ids)
    assert min(new_ids) > max(old_ids)


def test_message_ids_continue_after_a_re_created_queue_even_when_put_creates_it(engine):
    q = engine.queue("p", "orders")
    old_ids = q.put(["a", "b"])
    q.delete()
    new_ids = q.put(["c"])
    assert new_ids[0] > max(old_ids)


def test_list_details_gives_settings_and_attributes_without_counts(engine):
    engine.queue("p", "a").create(timeout=5, attrs={"k": "v"})
    engine.queue("p", "b").create(paused=True)
    [a, b] = engine.list_details("p")
    assert (a.name, a.settings.timeout, a.attrs, len(a.id)) == ("a", 5, {"k": "v"}, 32)
    assert (b.name, b.settings.paused) == ("b", True)
    assert [d.name for d in engine.list_details("p", page=1, per_page=1)] == ["b"]


def test_stats_read_counts_and_counters_of_many_queues_at_once(engine):
    a = engine.queue("p", "a")
    a.put(["1", "2", "3", NewMessage("later", delay=30)])
    [m] = a.reserve()
    a.delete_message(m.id)
    a.delete_messages([a.peek(1)[0].id])  # leaves a ghost id in the FIFO
    engine.queue("p", "b").create()
    engine.queue("other", "c").put(["x"])
    stats = {s.name: s for s in engine.stats("p")}
    assert (stats["a"].ready, stats["a"].delayed, stats["a"].reserved, stats["a"].size) == (1, 1, 0, 2)
    assert stats["a"].counters == {"put": 4, "reserved": 1, "deleted": 2, "expired": 0, "dead": 0, "cleared": 0,
                                   "push_delivered": 0, "push_failed": 0, "push_errors": 0, "set_aside": 0,
                                   "hops_dropped": 0}
    assert stats["b"].size == 0 and stats["b"].counters["put"] == 0
    assert engine.projects() == ["other", "p"]
