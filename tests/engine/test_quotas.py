"""Per-project quotas: queues, queued messages and bytes, event subscriptions and ids per request.
A refused call writes nothing; other projects are never affected; limits come from the engine
(the server's defaults) unless the project has its own."""

from __future__ import annotations

import pytest

from ferrymq.engine import Engine, NewMessage, QueueNotFound, QuotaExceeded, Quotas, Subscription


def refused(call, *args, quota: str, **kwargs) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as caught:
        call(*args, **kwargs)
    assert caught.value.quota == quota
    return caught.value


def test_a_project_creates_at_most_its_queues_by_put_or_by_configuration(engine):
    engine.set_project_limits("p", queues=2)
    engine.queue("p", "a").put(["x"])
    engine.queue("p", "b").create()
    error = refused(engine.queue("p", "c").put, ["x"], quota="queues")
    assert error.limit == 2 and "2" in error.message
    refused(engine.queue("p", "c").ensure, quota="queues")
    refused(engine.queue("p", "c").create, quota="queues")
    with pytest.raises(QueueNotFound):
        engine.queue("p", "c").info()
    engine.queue("p", "a").put(["y"])  # existing queues take messages
    engine.queue("p", "a").ensure(timeout=5)
    engine.queue("other", "c").put(["x"])  # another project has its own count
    engine.queue("p", "b").delete()
    engine.queue("p", "c").put(["x"])
    assert engine.project_usage("p").queues == 2


def test_queued_messages_are_summed_by_the_sweeper_and_a_project_over_its_limit_is_refused(engine):
    engine.set_project_limits("p", messages=5)
    a, b = engine.queue("p", "a"), engine.queue("p", "b")
    a.put(["1", "2", "3"])
    b.put(["4", "5"])
    engine.queue("other", "a").put(["x"] * 10)
    engine.sweep()  # measures: 5 of 5
    usage = engine.project_usage("p")
    assert (usage.messages, usage.over) == (5, "messages")
    engine.sweep()  # tells the queues
    refused(a.put, ["6"], quota="messages")
    refused(b.push, ["6"], quota="messages")
    refused(engine.queue("p", "new").put, ["6"], quota="messages")
    assert (a.info().size, b.info().size) == (3, 2)
    engine.queue("other", "a").put(["more"])
    for m in a.reserve(3):
        a.delete_message(m.id, m.reservation_id)  # deletes are never refused
    engine.sweep()
    engine.sweep()
    assert engine.project_usage("p").over == ""
    a.put(["6"])


def test_moves_between_queues_are_not_refused_by_the_message_quota(engine, clock):
    engine.set_project_limits("p", messages=1)
    q = engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead")
    q.put(["doomed"])
    engine.queue("p", "dead").create()
    engine.sweep()
    engine.sweep()
    refused(q.put, ["more"], quota="messages")
    [m] = q.reserve(1, timeout=1)
    clock.advance(2)
    engine.sweep()  # the lapsed reservation is dead-lettered into an over-quota project
    assert [d.body for d in engine.queue("p", "dead").peek(5)] == [b"doomed"]


def test_a_dead_letter_queue_created_on_first_use_counts_as_a_queue(engine, clock):
    engine.set_project_limits("p", queues=2)
    q = engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead")
    q.put(["a"])
    q.reserve(1, timeout=1)
    clock.advance(2)
    engine.sweep()
    assert [d.body for d in engine.queue("p", "dead").peek(5)] == [b"a"]
    refused(engine.queue("p", "third").put, ["x"], quota="queues")


def test_bytes_are_measured_as_redis_counts_them(real_engine):
    real_engine.set_project_limits("p", bytes=50_000)
    q = real_engine.queue("p", "q")
    q.put([b"x" * 1000] * 100)
    real_engine.sweep()
    usage = real_engine.project_usage("p")
    assert usage.bytes >= 100_000 and usage.over == "bytes"
    real_engine.sweep()
    refused(q.put, ["x"], quota="bytes")


def test_subscriptions_are_limited_and_replacing_one_is_not_a_new_one(engine):
    engine.set_project_limits("p", subscriptions=2)
    for sid in ("s1", "s2"):
        engine.put_subscription("p", Subscription(sid, "w", True, "a", ("queue.created",), "events"))
    refused(engine.put_subscription, "p", Subscription("s3", "w", True, "a", ("queue.created",), "events"),
            quota="subscriptions")
    engine.put_subscription("p", Subscription("s1", "renamed", True, "a", ("queue.created",), "events"))
    assert sorted(s.id for s in engine.list_subscriptions("p")) == ["s1", "s2"]
    assert engine.project_usage("p").subscriptions == 2


def test_ids_per_request_are_limited_beyond_one_engine_batch(engine):
    q = engine.queue("p", "q")
    ids = [i for _ in range(3) for i in q.put(["x"] * 100)]
    assert q.delete_messages(ids[:150]) == [True] * 150  # two script calls, one request
    engine.set_project_limits("p", ids_per_request=120)
    refused(q.delete_messages, ids[150:], quota="ids_per_request")
    assert q.info().size == 150  # nothing deleted
    assert q.delete_messages(ids[150:270]) == [True] * 120


def test_the_engine_quotas_are_the_default_and_a_project_limit_overrides_them(redis_client, clock):
    strict = Engine(redis_client, clock=clock, quotas=Quotas(queues=1))
    strict.queue("p", "a").put(["x"])
    refused(strict.queue("p", "b").put, ["x"], quota="queues")
    strict.set_project_limits("p", queues=3)
    strict.queue("p", "b").put(["x"])
    usage = strict.project_usage("p")
    assert (usage.limits.queues, usage.custom) == (3, frozenset({"queues"}))
    strict.set_project_limits("p", queues=None)  # back to the engine's
    assert strict.project_usage("p").limits == Quotas(queues=1) and strict.project_usage("p").custom == frozenset()


@pytest.mark.parametrize("limits", [{"queues": -1}, {"ids_per_request": 99}, {"colour": 3}, {"bytes": "many"}])
def test_bad_limits_are_refused(engine, limits):
    from ferrymq.engine import InvalidArgument

    with pytest.raises(InvalidArgument):
        engine.set_project_limits("p", **limits)


def test_a_new_message_is_refused_but_its_project_keeps_working(engine):
    engine.set_project_limits("p", messages=0)
    q = engine.queue("p", "q")
    q.put([NewMessage("first")])  # nothing measured yet
    engine.sweep()
    engine.sweep()
    refused(q.put, ["second"], quota="messages")
    [m] = q.reserve(1)
    q.release(m.id, m.reservation_id)
    assert q.info().ready == 1
