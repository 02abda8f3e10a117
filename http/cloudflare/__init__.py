"""Cloudflare Queues REST API (v4 envelope) over the engine. Translation only: parse, engine
calls, shape. The contract and every choice made where sources disagree:
docs/contracts/cloudflare-queues.md.

Mapping onto the engine:
- queue_id is the engine's queue id; settings: delivery_delay -> delay, delivery_paused ->
  paused, message_retention_period -> expires_in. A queue created here starts with the
  http_pull defaults as its delivery policy (30 s visibility, max_retries 3: 4 deliveries).
- one consumer per queue, stored as a queue attribute; its max_retries (+1), retry_delay,
  dead_letter_queue and visibility timeout become the queue's delivery policy, so they hold
  whichever contract drains the queue. Dead-lettering is the engine's max-deliveries rule.
- lease_id = "<message id>.<reservation id>"; an ack deletes whatever the lease's age, a retry
  needs the current lease (the engine's reservation check).
- event subscriptions are engine subscriptions; our own queues' events are the only source
  that fires (type "ferrymq.queue"); Cloudflare's platform sources are stored, never fired.

Modules, along the API's sections: ``envelope`` (limits, codes, the v4 envelope, the account
and queue of a request), ``queues``, ``consumers``, ``messages`` and ``subscriptions``.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route

from .consumers import create_consumer, delete_consumer, get_consumer, list_consumers, update_consumer
from .envelope import BATCH_MESSAGES, CONTENT_TYPES, DELAY, JURISDICTIONS, MAX_CONCURRENCY, MAX_RETRIES
from .envelope import MAX_WAIT_MS, PULL_BATCH, RETENTION, VISIBILITY_MS
from .messages import ack_messages, peek_messages, pull_messages, purge_messages, push_batch, push_message
from .queues import create_queue, delete_queue, get_queue, list_queues, purge_status, queue_metrics
from .queues import start_purge, update_queue
from .subscriptions import ORDERS, SOURCE_TYPES, create_subscription, delete_subscription, get_subscription
from .subscriptions import list_subscriptions, update_subscription

__all__ = [
    "BATCH_MESSAGES", "CONTENT_TYPES", "DELAY", "JURISDICTIONS", "MAX_CONCURRENCY", "MAX_RETRIES", "MAX_WAIT_MS",
    "ORDERS", "PULL_BATCH", "RETENTION", "SOURCE_TYPES", "VISIBILITY_MS", "routes",
]


def routes() -> list[BaseRoute]:
    queue = "/queues/{queue_id}"
    # Starlette tries routes in order (1-2 us each): the message routes come first.
    table = [
        (queue + "/messages", push_message, "POST"),
        (queue + "/messages/batch", push_batch, "POST"),
        (queue + "/messages/pull", pull_messages, "POST"),
        (queue + "/messages/ack", ack_messages, "POST"),
        ("/queues", create_queue, "POST"),
        ("/queues", list_queues, "GET"),
        (queue, get_queue, "GET"),
        (queue, update_queue, "PUT"),
        (queue, update_queue, "PATCH"),
        (queue, delete_queue, "DELETE"),
        (queue + "/metrics", queue_metrics, "GET"),
        (queue + "/consumers", create_consumer, "POST"),
        (queue + "/consumers", list_consumers, "GET"),
        (queue + "/consumers/{consumer_id}", get_consumer, "GET"),
        (queue + "/consumers/{consumer_id}", update_consumer, "PUT"),
        (queue + "/consumers/{consumer_id}", delete_consumer, "DELETE"),
        (queue + "/messages/peek", peek_messages, "POST"),
        (queue + "/messages/purge", purge_messages, "POST"),
        (queue + "/purge", start_purge, "POST"),
        (queue + "/purge", purge_status, "GET"),
        ("/event_subscriptions/subscriptions", create_subscription, "POST"),
        ("/event_subscriptions/subscriptions", list_subscriptions, "GET"),
        ("/event_subscriptions/subscriptions/{subscription_id}", get_subscription, "GET"),
        ("/event_subscriptions/subscriptions/{subscription_id}", update_subscription, "PATCH"),
        ("/event_subscriptions/subscriptions/{subscription_id}", delete_subscription, "DELETE"),
    ]
    return [Mount("/client/v4/accounts/{account_id}", routes=[Route(p, e, methods=[m]) for p, e, m in table])]
