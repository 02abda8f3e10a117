"""Events: a queue emits them (``queue.created``, ``message.dead_lettered``…) to the event
subscriptions (Cloudflare's) that ask for them, as JSON messages in their destination queue;
the engine stores the subscriptions."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import orjson

from .. import core
from ..core import Command, Eval, Verb
from ..errors import QueueNotFound, TooLarge
from ..models import NewMessage, Subscription
from .context import Context, EngineBase, QueueBase


class QueueEvents(QueueBase):
    """The events a queue emits."""

    __slots__ = ()

    def _emit(self, event: str, payload: dict[str, Any]) -> Verb[int]:
        """Deliver this queue's ``event`` to every enabled subscription that asks for it, as a JSON
        message in its destination queue (which must exist: events never create queues). Best
        effort: an event is sent after the change it reports, so a crash in between loses it.
        A partitioned destination takes one source queue's events in one partition (the source's
        name is the partition key), so they stay in the order they happened."""
        pk = self.ctx.project_keys(self.project)
        delivered = 0
        for doc in (yield Command(("HVALS", pk.subscriptions))):
            sub = decode_subscription(doc)
            if not (sub.enabled and sub.source_queue == self.name and event in sub.events):
                continue
            body = event_body(self.ctx, self.project, self.name, sub.id, event, payload)
            destination = self._queue(sub.destination_queue)
            try:
                yield from destination.put(
                    [NewMessage(body, content_type="json")], create=False, partition_key=self.name)
            except QueueNotFound:
                continue
            delivered += 1
        return delivered


class Subscriptions(EngineBase):
    """Event subscriptions, stored per project."""

    def put_subscription(self, project: str, subscription: Subscription) -> Verb[Subscription]:
        """Store (create or replace) a subscription. The caller validates it; the engine bounds
        its size (``Limits.max_subscription_bytes``)."""
        core.check_name("project", project, self.ctx.limits)
        doc = encode_subscription(subscription)
        limit = self.ctx.limits.max_subscription_bytes
        if len(doc) > limit:
            raise TooLarge("subscription", f"a subscription takes {len(doc)} bytes; the limit is {limit}")
        pk = self.ctx.project_keys(project)
        yield Eval("subscribe", [pk.subscriptions, pk.limits], [subscription.id, doc, self.ctx.quotas.subscriptions])
        return subscription

    def get_subscription(self, project: str, subscription_id: str) -> Verb[Subscription | None]:
        doc = yield Command(("HGET", self.ctx.project_keys(project).subscriptions, subscription_id))
        return decode_subscription(doc) if doc is not None else None

    def list_subscriptions(self, project: str) -> Verb[list[Subscription]]:
        docs = yield Command(("HVALS", self.ctx.project_keys(project).subscriptions))
        return sorted((decode_subscription(d) for d in docs), key=lambda s: (s.created_at, s.id))

    def delete_subscription(self, project: str, subscription_id: str) -> Verb[Subscription | None]:
        existing = yield from self.get_subscription(project, subscription_id)
        if existing is not None:
            yield Command(("HDEL", self.ctx.project_keys(project).subscriptions, subscription_id))
        return existing

    def emit(self, project: str, queue: str, event: str, payload: dict[str, Any]) -> Verb[int]:
        """Emit an event of a queue (beyond those the engine emits itself); returns deliveries."""
        return (yield from self.queue(project, queue)._emit(event, payload))


def event_body(ctx: Context, project: str, queue: str, subscription_id: str, event: str, payload: dict[str, Any]) -> bytes:
    """An event as a JSON message, in the shape of Cloudflare's event messages, with FerryMQ's own
    source type (not disguised as one of Cloudflare's)."""
    moment = datetime.fromtimestamp(ctx.clock.wall_ms() / 1000, timezone.utc)
    return orjson.dumps({
        "type": f"ferrymq.queue.{event}",
        "source": {"type": "ferrymq.queue", "queue_name": queue},
        "payload": payload,
        "metadata": {
            "accountId": project, "eventSubscriptionId": subscription_id, "eventSchemaVersion": 1,
            "eventTimestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        },
    })


def dead_letter_event(ref: str, target: str) -> dict[str, Any]:
    """Payload of message.dead_lettered from an outbox ref "source queue id:message id:deliveries"."""
    parts = ref.rsplit(":", 2)
    payload: dict[str, Any] = {"deadLetterQueue": target}
    if len(parts) == 3 and parts[2].isdigit():
        payload.update(messageId=parts[1], attempts=int(parts[2]))
    return payload


def encode_subscription(subscription: Subscription) -> bytes:
    return orjson.dumps(dataclasses.asdict(subscription))


def decode_subscription(doc: bytes) -> Subscription:
    fields = orjson.loads(doc)
    fields["events"] = tuple(fields["events"])
    return Subscription(**fields)
