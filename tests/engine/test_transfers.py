"""Transfers between queues (dead letters, error-queue messages, alert messages, ironmq:///
forwards) are the server's own work: a limit meant for clients never stops them, an entry that
cannot be moved is set aside where an operator sees it, and one queue's trouble never stops the
sweep of the others."""

from __future__ import annotations

import json

from ferrymq.engine import Engine, Limits, NewMessage, PushConfig, Subscriber

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
