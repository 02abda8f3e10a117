"""The official Cloudflare Python SDK (v5) against a live FerryMQ, with strict response validation:
every response must match the SDK's generated types."""

from __future__ import annotations

import base64
import json

import cloudflare
import pytest
from cloudflare import Cloudflare

ACCOUNT, TOKEN = "000000000000000000000001", "token-a"


@pytest.fixture
def cf(server):
    client = Cloudflare(api_token=TOKEN, base_url=server.url + "/client/v4", max_retries=0,
                        _strict_response_validation=True)
    yield client
    client.close()


def test_queue_and_consumer_lifecycle(cf):
    q = cf.queues.create(account_id=ACCOUNT, queue_name="orders")
    assert q.queue_name == "orders" and q.settings.message_retention_period == 345600
    c = cf.queues.consumers.create(q.queue_id, account_id=ACCOUNT, type="http_pull",
                                   dead_letter_queue="orders-dlq", settings={"max_retries": 1, "visibility_timeout_ms": 2000})
    assert c.type == "http_pull" and c.settings.max_retries == 1 and c.dead_letter_queue == "orders-dlq"
    assert [x.consumer_id for x in cf.queues.consumers.list(q.queue_id, account_id=ACCOUNT)] == [c.consumer_id]
    assert cf.queues.consumers.get(c.consumer_id, account_id=ACCOUNT, queue_id=q.queue_id).consumer_id == c.consumer_id
    worker = cf.queues.consumers.update(c.consumer_id, account_id=ACCOUNT, queue_id=q.queue_id, type="worker",
                                        script_name="my-worker", settings={"batch_size": 20})
    assert worker.type == "worker" and worker.script_name == "my-worker" and worker.settings.batch_size == 20
    assert [x.queue_name for x in cf.queues.list(account_id=ACCOUNT)] == ["orders"]
    edited = cf.queues.edit(q.queue_id, account_id=ACCOUNT, settings={"delivery_delay": 5})
    assert edited.settings.delivery_delay == 5
    updated = cf.queues.update(q.queue_id, account_id=ACCOUNT, queue_name="orders", settings={"message_retention_period": 600})
    assert (updated.settings.delivery_delay, updated.settings.message_retention_period) == (0, 600)
    cf.queues.consumers.delete(c.consumer_id, account_id=ACCOUNT, queue_id=q.queue_id)
    assert list(cf.queues.consumers.list(q.queue_id, account_id=ACCOUNT)) == []
    cf.queues.delete(q.queue_id, account_id=ACCOUNT)
    with pytest.raises(cloudflare.NotFoundError):
        cf.queues.get(q.queue_id, account_id=ACCOUNT)


def test_push_pull_ack_retry_expiry_and_dead_letters(cf, server):
    q = cf.queues.create(account_id=ACCOUNT, queue_name="work")
    cf.queues.consumers.create(q.queue_id, account_id=ACCOUNT, type="http_pull", dead_letter_queue="work-dlq",
                               settings={"max_retries": 1, "visibility_timeout_ms": 2000})
    pushed = cf.queues.messages.push(q.queue_id, account_id=ACCOUNT, body={"n": 1}, content_type="json")
    assert pushed.metadata.metrics.backlog_count == 1
    cf.queues.messages.bulk_push(q.queue_id, account_id=ACCOUNT, messages=[
        {"body": "two", "content_type": "text"}, {"body": "three", "content_type": "text"}])

    batch = cf.queues.messages.pull(q.queue_id, account_id=ACCOUNT, batch_size=10)
    assert batch.message_backlog_count == 3
    one, two, three = batch.messages
    assert json.loads(base64.b64decode(one.body)) == {"n": 1} and two.body == "two" and one.attempts == 1
    acked = cf.queues.messages.ack(q.queue_id, account_id=ACCOUNT, acks=[{"lease_id": one.lease_id}],
                                   retries=[{"lease_id": two.lease_id, "delay_seconds": 0}])
    assert (acked.ack_count, acked.retry_count, acked.warnings) == (1, 1, None)

    server.clock.advance(2)  # three's lease expires: a failed attempt, like a retry
    again = cf.queues.messages.pull(q.queue_id, account_id=ACCOUNT, batch_size=10).messages
    assert sorted((m.body, m.attempts) for m in again) == [("three", 2), ("two", 2)]
    stale = cf.queues.messages.ack(q.queue_id, account_id=ACCOUNT, retries=[{"lease_id": three.lease_id}])
    assert stale.retry_count == 0 and set(stale.warnings) == {three.lease_id}

    server.clock.advance(2)  # both have now failed max_retries + 1 = 2 deliveries
    assert cf.queues.messages.pull(q.queue_id, account_id=ACCOUNT, batch_size=10).messages == []
    dlq = next(x for x in cf.queues.list(account_id=ACCOUNT) if x.queue_name == "work-dlq")
    dead = cf.queues.messages.pull(dlq.queue_id, account_id=ACCOUNT, batch_size=10).messages
    assert sorted(m.body for m in dead) == ["three", "two"] and {m.attempts for m in dead} == {1}
    metrics = cf.queues.get_metrics(q.queue_id, account_id=ACCOUNT)
    assert metrics.backlog_count == 0


def test_pause_peek_purge(cf):
    q = cf.queues.create(account_id=ACCOUNT, queue_name="paused")
    assert cf.queues.edit(q.queue_id, account_id=ACCOUNT, settings={"delivery_paused": True}).settings.delivery_paused
    cf.queues.messages.push(q.queue_id, account_id=ACCOUNT, body="x", content_type="text")
    with pytest.raises(cloudflare.ConflictError):
        cf.queues.messages.pull(q.queue_id, account_id=ACCOUNT)
    [peeked] = cf.queues.messages.peek(q.queue_id, account_id=ACCOUNT, batch_size=5).messages
    assert peeked.body == "x" and peeked.ref == peeked.id
    assert cf.queues.purge.status(q.queue_id, account_id=ACCOUNT).completed is None
    cf.queues.purge.start(q.queue_id, account_id=ACCOUNT, delete_messages_permanently=True)
    assert cf.queues.purge.status(q.queue_id, account_id=ACCOUNT).completed == "true"
    resumed = cf.queues.edit(q.queue_id, account_id=ACCOUNT, settings={"delivery_paused": False})
    assert resumed.settings.delivery_paused is False
    assert cf.queues.messages.pull(q.queue_id, account_id=ACCOUNT).messages == []
    cf.queues.messages.push(q.queue_id, account_id=ACCOUNT, body="y", content_type="text")
    purged = cf.queues.messages.purge(q.queue_id, account_id=ACCOUNT, refs=[{"ref": "1"}])
    assert purged.warnings == {"1": "Message not found"}


def test_event_subscriptions(cf, server):
    events = cf.queues.create(account_id=ACCOUNT, queue_name="events")
    sub = cf.queues.subscriptions.create(account_id=ACCOUNT, name="kv watch", enabled=True, source={"type": "kv"},
                                         destination={"type": "queues.queue", "queue_id": events.queue_id},
                                         events=["namespace.created"])
    assert sub.name == "kv watch" and sub.destination.queue_id == events.queue_id
    assert [s.id for s in cf.queues.subscriptions.list(account_id=ACCOUNT)] == [sub.id]
    assert cf.queues.subscriptions.get(sub.id, account_id=ACCOUNT).enabled is True
    assert cf.queues.subscriptions.update(sub.id, account_id=ACCOUNT, enabled=False).enabled is False
    assert cf.queues.subscriptions.delete(sub.id, account_id=ACCOUNT).id == sub.id
    with pytest.raises(cloudflare.NotFoundError):
        cf.queues.subscriptions.get(sub.id, account_id=ACCOUNT)

    # Our own source type is not one the SDK knows: strict validation refuses it (documented), the
    # default lenient client reads it.
    lenient = Cloudflare(api_token=TOKEN, base_url=server.url + "/client/v4", max_retries=0)
    cf.queues.create(account_id=ACCOUNT, queue_name="orders")
    ours = lenient.queues.subscriptions.create(account_id=ACCOUNT, name="orders events", enabled=True,
                                               source={"type": "ferrymq.queue", "queue_name": "orders"},
                                               destination={"type": "queues.queue", "queue_id": events.queue_id},
                                               events=["queue.deleted"])
    orders = next(x for x in cf.queues.list(account_id=ACCOUNT) if x.queue_name == "orders")
    cf.queues.delete(orders.queue_id, account_id=ACCOUNT)
    [event] = cf.queues.messages.pull(events.queue_id, account_id=ACCOUNT).messages
    doc = json.loads(base64.b64decode(event.body))
    assert doc["type"] == "ferrymq.queue.queue.deleted" and doc["metadata"]["eventSubscriptionId"] == ours.id
    lenient.close()
