"""Transfers between queues (dead letters, error-queue messages, alert messages, ironmq:///
forwards) are the server's own work: a limit meant for clients never stops them, an entry that
cannot be moved is set aside where an operator sees it, and one queue's trouble never stops the
sweep of the others."""

from __future__ import annotations

import asyncio
import json

import pytest

from ferrymq.engine import Alert, Engine, InvalidArgument, Limits, NewMessage, PushConfig, Pusher, Subscriber

A = "http://a.example/hook"
LEASE = 70.0


def fail_every_push(q, code=500, text="500 Internal Server Error"):
    for delivery in q.claim_pushes(100, LEASE).deliveries:
        q.report_push(delivery, code, text)


def poison(client, project, queue, entry=b"dlq\tbad\x01name\tref\nbody"):
    """An outbox entry that cannot be moved (here: a target no queue can be named)."""
    client.rpush(f"fmq:{{{project}/{queue}}}:outbox", entry)


def test_an_error_queue_message_over_the_client_body_limit_reaches_the_error_queue(engine):
    q = engine.queue("p", "pq")
    q.set_push(PushConfig((Subscriber(A),), retries=0, error_queue="errors"))
    body = '"quoted"' * (engine.limits.max_body_bytes // 8)  # JSON escaping makes it larger
    [mid] = q.put([body])
    fail_every_push(q)
    [error] = engine.queue("p", "errors").reserve()
    assert len(error.body) > engine.limits.max_body_bytes
    doc = json.loads(error.body)
    assert (doc["source_msg_id"], doc["body"]) == (mid, body)
    assert q.info().stuck == 0
    q.delete()
    assert [r.name for r in engine.list_queues("p")] == ["errors"]


def test_an_entry_that_cannot_be_moved_is_set_aside_and_counted(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.create()
    poison(redis_client, "p", "q")
    exists, more, moved = q.maintain()
    assert exists and moved == 0
    assert redis_client.llen("fmq:{p/q}:outbox") == 0
    info = q.info()
    assert info.stuck == 1 and "queue must be 1 to 255 characters" in info.stuck_reason
    [stats] = real_engine.stats("p")
    assert stats.stuck == 1
    assert q.maintain() == (True, False, 0)  # never retried at the head: nothing left to do


def test_a_queue_with_a_stuck_entry_can_be_deleted(real_engine, redis_client):
    q = real_engine.queue("p", "q")
    q.create()
    poison(redis_client, "p", "q")
    q.delete()
    assert real_engine.count_queues("p") == 0
    assert redis_client.keys("fmq:{p/q}:*") == [b"fmq:{p/q}:idfloor"]  # the stuck list went with it


def test_a_poison_entry_does_not_stop_the_sweep_of_other_projects(real_engine, redis_client, clock):
    real_engine.queue("a", "q").create()
    poison(redis_client, "a", "q")
    real_engine.queue("z", "q").put([NewMessage("x", expires_in=5)])
    clock.advance(5)
    report = real_engine.sweep()
    assert report.queues == 2 and report.failed == ()
    assert real_engine.queue("z", "q").info().counters["expired"] == 1
    assert real_engine.queue("a", "q").info().stuck == 1


def test_a_queue_that_fails_to_sweep_does_not_stop_the_others(real_engine, redis_client, clock):
    real_engine.queue("a", "broken").create()
    redis_client.set("fmq:{a/broken}:ready", "not a list")  # whatever breaks one queue
    real_engine.queue("z", "q").put([NewMessage("x", expires_in=5)])
    clock.advance(5)
    report = real_engine.sweep()
    assert [(project, queue) for project, queue, _ in report.failed] == [("a", "broken")]
    assert "WRONGTYPE" in str(report.failed[0][2])
    assert report.queues == 1
    assert real_engine.queue("z", "q").info().counters["expired"] == 1


def test_a_dead_letter_transfer_is_not_held_to_the_client_limits(real_engine, redis_client, clock):
    q = real_engine.queue("p", "q")
    q.create(max_deliveries=1, dead_letter_queue="dead", timeout=5)
    q.put(["x" * 1000])
    q.reserve()
    clock.advance(5)
    tight = Engine(redis_client, clock=clock, limits=Limits(max_body_bytes=100))
    assert tight.sweep().transfers == 1
    assert [len(m.body) for m in real_engine.queue("p", "dead").peek()] == [1000]


# -- forwarding loops ---------------------------------------------------------------------------


def forwarding(*targets):
    return PushConfig(tuple(Subscriber(f"ironmq:///{t}") for t in targets))


def refused_field(call) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as err:
        call()
    return err.value.field, err.value.message


def test_duplicate_subscriber_urls_are_refused(engine):
    q = engine.queue("p", "l1")
    assert refused_field(lambda: q.set_push(forwarding("l2", "l2"))) == (
        "subscribers[1].url", "subscribers[1].url repeats subscribers[0].url")
    assert refused_field(lambda: q.set_push(PushConfig((Subscriber(A), Subscriber("http://b.example/"), Subscriber(A)))))[0] == (
        "subscribers[2].url")
    assert engine.list_queues("p") == []


def test_a_forwarding_cycle_is_refused_however_long(engine):
    engine.queue("p", "l2").set_push(forwarding("l3"))
    engine.queue("p", "l3").set_push(forwarding("elsewhere", "l1"))
    field, message = refused_field(lambda: engine.queue("p", "l1").add_subscribers([Subscriber("ironmq:///l2")]))
    assert field == "subscribers[0].url"
    assert message == "subscribers[0].url would send messages round in a loop: l1 → l2 → l3 → l1"
    assert engine.queue("p", "l1").set_push(forwarding("elsewhere")).settings.push is not None  # no loop: fine


@pytest.mark.one_partition
def test_loops_through_error_queues_and_progressive_alerts_are_refused(engine):
    engine.queue("p", "errors").set_push(forwarding("l1"))
    field, _ = refused_field(lambda: engine.queue("p", "l1").set_push(PushConfig((Subscriber(A),), error_queue="errors")))
    assert field == "error_queue"
    engine.queue("p", "fwd").set_push(forwarding("watched"))
    field, _ = refused_field(lambda: engine.queue("p", "watched").add_alerts([Alert("progressive", 1, "fwd")]))
    assert field == "alerts[0].queue"
    engine.queue("p", "watched").add_alerts([Alert("fixed", 1, "fwd")])  # fires once per crossing: no loop


async def test_concurrent_changes_cannot_make_a_loop_between_them(aengine):
    async def attempt(source, target):
        try:
            await aengine.queue("p", source).set_push(forwarding(target))
            return True
        except InvalidArgument:
            return False

    for _ in range(5):
        await aengine.client.flushall()
        made = await asyncio.gather(attempt("l1", "l2"), attempt("l2", "l1"))
        assert sorted(made) == [False, True]


def force_push_config(client, project, queue, config_json: str) -> None:
    """Store a push configuration as it is, as if a race had let a loop through."""
    client.hset(f"fmq:{{{project}/{queue}}}:meta", "push", config_json)


def loop_config(*targets, errq=""):
    subs = [{"url": f"ironmq:///{t}" if "://" not in t else t} for t in targets]
    return json.dumps({"type": "multicast", "subs": subs, "retries": 0, "delay": 0, "errq": errq})


async def test_forwarded_messages_past_the_hop_limit_are_dropped_and_counted(aengine, redis_client, push_until_idle):
    l1, l2 = aengine.queue("p", "l1"), aengine.queue("p", "l2")
    await l1.set_push(forwarding("x"))
    await l2.set_push(forwarding("y"))
    force_push_config(redis_client, "p", "l1", loop_config("l2", "l2"))  # the loop
    force_push_config(redis_client, "p", "l2", loop_config("l1"))
    await l1.put(["once"])
    pusher = Pusher(aengine)
    try:
        await push_until_idle(pusher)
    finally:
        await pusher.stop()
    one, two = await l1.info(), await l2.info()
    # hops 0..5: l1 gets 1 + 2 + 4 messages, l2 2 + 4 + 8; the 8 at hop 5 are not forwarded
    assert (one.total_messages, two.total_messages) == (7, 14)
    assert two.counters["hops_dropped"] == 8 and one.counters.get("hops_dropped", 0) == 0
    statuses = [s for m in await message_ids(redis_client, "p", "l2") for s in await l2.push_status(m)]
    dropped = [s for s in statuses if s.status == "error"]
    assert len(dropped) == 8 and all("forwarded 5 times" in s.error for s in dropped)


async def message_ids(client, project, queue):
    return sorted(k.decode() for k in client.hkeys(f"fmq:{{{project}/{queue}}}:pstatus"))


def test_error_queue_messages_past_the_hop_limit_are_dropped_and_counted(real_engine, redis_client):
    for name, errq in (("l1", "l2"), ("l2", "l1")):
        real_engine.queue("p", name).set_push(PushConfig((Subscriber(A),)))
        force_push_config(redis_client, "p", name, loop_config(A, errq=errq))
    l1, l2 = real_engine.queue("p", "l1"), real_engine.queue("p", "l2")
    l1.put(["fails everywhere"])
    for _ in range(10):
        fail_every_push(l1)
        fail_every_push(l2)
    # hops 0..5 alternate l1, l2; the error message of hop 5 would be hop 6: dropped
    assert (l1.info().total_messages, l2.info().total_messages) == (3, 3)
    assert (l1.info().counters.get("hops_dropped", 0), l2.info().counters["hops_dropped"]) == (0, 1)


async def test_dead_letters_racing_to_create_their_queue_both_arrive(aengine, redis_client, clock):
    """Two queues dead-letter into one missing queue at once: both transfers find it missing, both
    create it, and the second finds it created. The create modes' arguments were then read as the
    transfer's dedupe window (nil), and the second dead letter was set aside as stuck."""
    sources = [aengine.queue("p", name) for name in ("a", "b")]
    for q in sources:
        await q.create(max_deliveries=1, dead_letter_queue="dead", timeout=1)
        await q.put(["x"])
        assert len(await q.reserve(1)) == 1
    clock.advance(2)  # lapsed, out of deliveries: the next maintenance dead-letters each
    await asyncio.gather(*(q.put(["y"]) for q in sources))
    assert (await aengine.queue("p", "dead").info()).ready == 2
    assert [redis_client.llen(f"fmq:{{p/{name}}}:stuck") for name in ("a", "b")] == [0, 0]
