"""Event subscriptions: a queue's events routed into another queue as JSON messages."""

from __future__ import annotations

import json

from ferrymq.engine import Subscription


def subscribe(engine, source, events, destination="events", *, enabled=True, sid="s1"):
    return engine.put_subscription("p", Subscription(sid, "watch", enabled, source, tuple(events), destination))


def events_in(engine, queue="events"):
    return [json.loads(m.body) for m in engine.queue("p", queue).peek(100)]


def test_queue_events_reach_the_destination_queue(engine, clock):
    engine.queue("p", "events").create()
    subscribe(engine, "orders", ["queue.created", "queue.purged", "queue.deleted"])
    orders = engine.queue("p", "orders")
    info = orders.create()
    orders.put(["x"])
    orders.clear()
    orders.delete()
    got = events_in(engine)
    assert [e["type"] for e in got] == [
        "ferrymq.queue.queue.created", "ferrymq.queue.queue.purged", "ferrymq.queue.queue.deleted"
    ]
    first = got[0]
    assert first["source"] == {"type": "ferrymq.queue", "queue_name": "orders"}
    assert first["payload"] == {"queueId": info.id}
    assert first["metadata"]["accountId"] == "p" and first["metadata"]["eventSubscriptionId"] == "s1"
    assert got[1]["payload"] == {"removed": 1}
    [message] = engine.queue("p", "events").peek(1)
    assert message.content_type == "json"


def test_dead_letters_are_reported(engine, clock):
    engine.queue("p", "events").create()
    q = engine.queue("p", "work")
    q.create(max_deliveries=1, dead_letter_queue="dead")
    subscribe(engine, "work", ["message.dead_lettered"])
    [mid] = q.put(["x"])
    [m] = q.reserve()
    q.release(m.id)
    [event] = events_in(engine)
    assert event["payload"] == {"messageId": mid, "attempts": 1, "deadLetterQueue": "dead"}


def test_disabled_unmatched_and_orphan_subscriptions_deliver_nothing(engine):
    engine.queue("p", "events").create()
    subscribe(engine, "orders", ["queue.created"], enabled=False, sid="off")
    subscribe(engine, "orders", ["queue.deleted"], sid="other-event")
    subscribe(engine, "orders", ["queue.created"], destination="gone", sid="no-destination")
    subscribe(engine, None, ["queue.created"], sid="foreign-source")
    engine.queue("p", "orders").create()
    assert events_in(engine) == []
    assert [q.name for q in engine.list_queues("p")] == ["events", "orders"]  # "gone" not created


def test_subscriptions_are_stored_listed_and_deleted(engine):
    sub = subscribe(engine, "orders", ["queue.created"])
    sub2 = subscribe(engine, "other", ["queue.deleted"], sid="s2")
    assert engine.get_subscription("p", "s1") == sub
    assert engine.list_subscriptions("p") == [sub, sub2]
    assert engine.delete_subscription("p", "s1") == sub
    assert engine.get_subscription("p", "s1") is None
    assert engine.delete_subscription("p", "s1") is None
    assert engine.list_subscriptions("other-project") == []


def test_a_contract_can_emit_its_own_events(engine):
    engine.queue("p", "events").create()
    subscribe(engine, "orders", ["consumer.created"])
    assert engine.emit("p", "orders", "consumer.created", {"consumerId": "c1"}) == 1
    assert events_in(engine)[0]["payload"] == {"consumerId": "c1"}
