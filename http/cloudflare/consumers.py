"""Cloudflare Queues: the one consumer of a queue, stored as a queue attribute; its settings
become the queue's delivery policy."""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from starlette.requests import Request

from ferrymq.engine.aio import AsyncQueue
from ferrymq.engine.errors import InvalidArgument
from ferrymq.engine.models import QueueDetails, QueueInfo

from .._common import JSON, engine
from .envelope import (
    BAD_BODY, BAD_CONSUMER, CONSUMER_ATTR, CONSUMER_EXISTS, DELAY, MAX_CONCURRENCY, MAX_RETRIES,
    MAX_WAIT_MS, NOT_FOUND, PULL_BATCH, PULL_DEFAULTS, VISIBILITY_MS, WORKER_DEFAULTS, bad, body_object,
    now_ms, number, ok, page_info, queue_of, timestamp,
)

def stored_consumer(attrs: dict[str, str]) -> dict[str, Any] | None:
    raw = attrs.get(CONSUMER_ATTR)
    return orjson.loads(raw) if raw else None


def consumer_view(consumer: dict[str, Any], queue: QueueInfo | QueueDetails) -> dict[str, Any]:
    """The union of the SDK4 and SDK5 consumer fields, so both validate strictly."""
    view = {**consumer, "queue_name": queue.name, "queue_id": queue.id}
    if consumer["type"] == "worker":
        view["script"] = consumer["script_name"]
    return view


def consumer_doc(doc: dict[str, Any], queue: str, consumer_id: str, created_on: str) -> dict[str, Any]:
    kind = doc.get("type")
    if kind not in ("worker", "http_pull"):
        raise bad(BAD_BODY, "type must be worker or http_pull")
    given = doc.get("settings") or {}
    if not isinstance(given, dict):
        raise bad(BAD_CONSUMER, "settings must be an object")
    settings = dict(PULL_DEFAULTS if kind == "http_pull" else WORKER_DEFAULTS)
    for name in settings:
        if given.get(name) is not None:
            settings[name] = consumer_setting(name, given[name])
    dlq = doc.get("dead_letter_queue") or ""
    if not isinstance(dlq, str) or dlq == queue:
        raise bad(BAD_CONSUMER, "dead_letter_queue must name another queue")
    consumer = {"consumer_id": consumer_id, "created_on": created_on, "type": kind,
                "dead_letter_queue": dlq, "settings": settings}
    if kind == "worker":
        script = doc.get("script_name") or doc.get("script")
        if not isinstance(script, str) or not script:
            raise bad(BAD_CONSUMER, "a worker consumer needs script_name")
        consumer["script_name"] = script
    return consumer


def consumer_setting(name: str, value: Any) -> int:
    bounds = {"batch_size": PULL_BATCH, "max_retries": MAX_RETRIES, "retry_delay": DELAY,
              "visibility_timeout_ms": VISIBILITY_MS, "max_wait_time_ms": MAX_WAIT_MS,
              "max_concurrency": MAX_CONCURRENCY}[name]
    return number(value, name, bounds, BAD_CONSUMER)


def delivery_policy(consumer: dict[str, Any] | None) -> dict[str, Any]:
    """The engine settings a consumer implies (or, with none, the http_pull defaults)."""
    settings = consumer["settings"] if consumer else PULL_DEFAULTS
    policy = {
        "max_deliveries": settings["max_retries"] + 1,
        "retry_delay": settings["retry_delay"],
        "dead_letter_queue": consumer["dead_letter_queue"] if consumer else "",
    }
    if "visibility_timeout_ms" in settings:
        policy["timeout"] = settings["visibility_timeout_ms"] / 1000
    return policy


async def save_consumer(request: Request, q: AsyncQueue, doc: dict[str, Any], consumer_id: str, created: str) -> JSON:
    consumer = consumer_doc(doc, q.name, consumer_id, created)
    try:
        info = await q.update(attrs={CONSUMER_ATTR: orjson.dumps(consumer).decode()}, **delivery_policy(consumer))
    except InvalidArgument as exc:
        raise bad(BAD_CONSUMER, exc.message) from None
    await engine(request).emit(q.project, q.name, "consumer.created", {"consumerId": consumer_id})
    return ok(consumer_view(consumer, info))


async def create_consumer(request: Request) -> JSON:
    q = await queue_of(request)
    doc = await body_object(request)
    if stored_consumer((await q.info()).attrs):
        raise bad(CONSUMER_EXISTS, "workers.api.error.consumer_exists", 409)
    return await save_consumer(request, q, doc, secrets.token_hex(16), timestamp(now_ms(request)))


async def update_consumer(request: Request) -> JSON:
    """PUT replaces the consumer, creating it under this id if the queue has none."""
    q = await queue_of(request)
    doc = await body_object(request)
    existing = stored_consumer((await q.info()).attrs)
    consumer_id = request.path_params["consumer_id"]
    if existing and existing["consumer_id"] != consumer_id:
        raise bad(CONSUMER_EXISTS, "workers.api.error.consumer_exists", 409)
    created = existing["created_on"] if existing else timestamp(now_ms(request))
    return await save_consumer(request, q, doc, consumer_id, created)


async def list_consumers(request: Request) -> JSON:
    info = await (await queue_of(request)).info()
    consumer = stored_consumer(info.attrs)
    found = [consumer_view(consumer, info)] if consumer else []
    return ok(found, info=page_info(1, max(1, len(found)), len(found), len(found)))


async def consumer_of(request: Request) -> tuple[AsyncQueue, QueueInfo, dict[str, Any]]:
    q = await queue_of(request)
    info = await q.info()
    consumer = stored_consumer(info.attrs)
    if consumer is None or consumer["consumer_id"] != request.path_params["consumer_id"]:
        raise bad(NOT_FOUND, "Consumer not found", 404)
    return q, info, consumer


async def get_consumer(request: Request) -> JSON:
    _, info, consumer = await consumer_of(request)
    return ok(consumer_view(consumer, info))


async def delete_consumer(request: Request) -> JSON:
    q, _, _ = await consumer_of(request)
    await q.update(attrs={CONSUMER_ATTR: None}, **delivery_policy(None))
    return ok(None)
