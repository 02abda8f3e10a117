"""Cloudflare Queues: push (one or a batch), pull with leases, ack and retry, peek and purge."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from starlette.requests import Request

from ferrymq.engine import Message, NewMessage

from .._common import JSON, hot
from .consumers import stored_consumer
from .envelope import (
    BAD_BODY, BAD_DELAY_OR_TYPE, BAD_MESSAGE, BATCH_BYTES, BATCH_MESSAGES, BATCH_TOO_BIG, CONTENT_TYPES,
    DELAY, MESSAGE_BYTES, PULL_BATCH, PULL_DEFAULTS, TOO_BIG, TOO_MANY, VISIBILITY_MS, bad, body_object,
    number, ok, queue_of,
)
from .queues import metrics

def new_message(item: Any, pointer: str, batch_delay: int | None = None) -> NewMessage:
    """One message to push: body encoded by content type (notes §2.3), delay precedence
    message > batch > queue default."""
    if not isinstance(item, dict) or "body" not in item:
        raise bad(BAD_MESSAGE, f"{pointer}body is required")
    content_type = item.get("content_type", "json")
    if content_type not in CONTENT_TYPES:
        raise bad(BAD_DELAY_OR_TYPE, f"{pointer}content_type must be text, json or bytes")
    body = encode_body(item["body"], content_type, pointer)
    if len(body) > MESSAGE_BYTES:
        raise bad(TOO_BIG, f"{pointer}body is {len(body)} bytes; a message may be at most {MESSAGE_BYTES}")
    delay = batch_delay
    if item.get("delay_seconds") is not None:
        delay = number(item["delay_seconds"], f"{pointer}delay_seconds", DELAY, BAD_DELAY_OR_TYPE)
    return NewMessage(body, delay=delay, content_type=content_type)


def encode_body(body: Any, content_type: str, pointer: str) -> bytes:
    if content_type == "text":
        if not isinstance(body, str):
            raise bad(BAD_MESSAGE, f"{pointer}body must be a string for content_type text")
        return body.encode()
    if content_type == "bytes":
        if not isinstance(body, str):
            raise bad(BAD_MESSAGE, f"{pointer}body must be base64 text for content_type bytes")
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise bad(BAD_MESSAGE, f"{pointer}body is not valid base64") from None
    return orjson.dumps(body)


def pulled_body(message: Message) -> tuple[str, str]:
    """(body, CF-Content-Type): json and bytes as base64, text (and other APIs' messages) plain."""
    if message.content_type in ("json", "bytes"):
        return base64.b64encode(message.body).decode(), message.content_type
    return message.text, "text"


def message_view(message: Message) -> dict[str, Any]:
    body, content_type = pulled_body(message)
    return {
        "id": message.id,
        "body": body,
        "attempts": message.reserved_count,
        "timestamp_ms": message.enqueued_at,
        "metadata": {"CF-sourceMessageSource": "api", "CF-Content-Type": content_type},
    }


@hot
async def push_message(request: Request) -> JSON:
    q = await queue_of(request, checked=False)
    message = new_message(await body_object(request), "")
    pushed = await q.push([message], queue_id=request.path_params["queue_id"])
    return ok({"metadata": {"metrics": metrics(pushed.backlog)}})


@hot
async def push_batch(request: Request) -> JSON:
    q = await queue_of(request, checked=False)
    doc = await body_object(request)
    items = doc.get("messages")
    if not isinstance(items, list) or not items:
        raise bad(BAD_MESSAGE, "messages must be a non-empty array")
    if len(items) > BATCH_MESSAGES:
        raise bad(TOO_MANY, f"a batch may hold at most {BATCH_MESSAGES} messages")
    batch_delay = None
    if doc.get("delay_seconds") is not None:
        batch_delay = number(doc["delay_seconds"], "delay_seconds", DELAY, BAD_DELAY_OR_TYPE)
    messages = [new_message(item, f"messages[{i}].", batch_delay) for i, item in enumerate(items)]
    size = sum(len(m.body) for m in messages)
    if size > BATCH_BYTES:
        raise bad(BATCH_TOO_BIG, f"the batch is {size} bytes; a batch may be at most {BATCH_BYTES}")
    pushed = await q.push(messages, queue_id=request.path_params["queue_id"])  # one engine call: all or nothing
    return ok({"metadata": {"metrics": metrics(pushed.backlog)}})


@hot
async def pull_messages(request: Request) -> JSON:
    q = await queue_of(request)
    doc = await body_object(request)
    consumer = stored_consumer((await q.info()).attrs) if needs_consumer(doc) else None
    defaults = consumer["settings"] if consumer and consumer["type"] == "http_pull" else PULL_DEFAULTS
    batch = doc.get("batch_size", defaults["batch_size"])
    visibility = doc.get("visibility_timeout_ms", doc.get("visibility_timeout", defaults["visibility_timeout_ms"]))
    n = number(batch, "batch_size", PULL_BATCH, BAD_BODY)
    timeout_ms = number(visibility, "visibility_timeout_ms", VISIBILITY_MS, BAD_BODY)
    pulled = await q.pull(n, timeout=timeout_ms / 1000)
    return ok({
        "message_backlog_count": pulled.backlog.size,
        "messages": [{**message_view(m), "lease_id": f"{m.id}.{m.reservation_id}"} for m in pulled.messages],
        "metadata": {"metrics": metrics(pulled.backlog)},
    })


def needs_consumer(doc: dict[str, Any]) -> bool:
    """Only a pull that leaves a setting out needs the consumer's defaults (one more call)."""
    return "batch_size" not in doc or not ("visibility_timeout_ms" in doc or "visibility_timeout" in doc)


def lease(item: Any) -> tuple[str, str] | None:
    """"<message id>.<reservation id>" -> (id, reservation id), or None if malformed."""
    lease_id = item.get("lease_id") if isinstance(item, dict) else None
    if not isinstance(lease_id, str):
        return None
    message_id, dot, token = lease_id.rpartition(".")
    return (message_id, token) if dot and message_id.isdigit() and token else None


@hot
async def ack_messages(request: Request) -> JSON:
    q = await queue_of(request)
    doc = await body_object(request)
    acks, retries = doc.get("acks") or [], doc.get("retries") or []
    if not isinstance(acks, list) or not isinstance(retries, list):
        raise bad(BAD_BODY, "acks and retries must be arrays")
    warnings: dict[str, str] = {}
    deletes, releases = [], []
    for item in acks:
        parsed = lease(item)
        if parsed is None:
            warnings[str(item.get("lease_id") if isinstance(item, dict) else item)] = "Invalid lease id"
        else:
            deletes.append((item["lease_id"], parsed[0]))
    for item in retries:
        parsed = lease(item)
        if parsed is None:
            warnings[str(item.get("lease_id") if isinstance(item, dict) else item)] = "Invalid lease id"
            continue
        delay = None
        if item.get("delay_seconds") is not None:
            delay = number(item["delay_seconds"], "delay_seconds", DELAY, BAD_BODY)
        releases.append((item["lease_id"], parsed, delay))
    acked = retried = 0
    settled = await q.settle(deletes=[(mid, None) for _, mid in deletes],  # the engine batches them
                             releases=[(mid, token, delay) for _, (mid, token), delay in releases])
    for (lease_id, _), status in zip(deletes, settled.deleted):
        acked += status == "ok"
        if status != "ok":
            warnings[lease_id] = "Message not found: already acknowledged, purged or expired"
    for (lease_id, _, _), status in zip(releases, settled.released):
        retried += status == "ok"
        if status != "ok":
            warnings[lease_id] = "Lease is not current: the message was redelivered, acknowledged or expired"
    result: dict[str, Any] = {"ackCount": acked, "retryCount": retried}
    if warnings:
        result["warnings"] = warnings
    return ok(result)


async def peek_messages(request: Request) -> JSON:
    q = await queue_of(request)
    doc = await body_object(request)
    n = number(doc.get("batch_size", PULL_DEFAULTS["batch_size"]), "batch_size", PULL_BATCH, BAD_BODY)
    return ok({"messages": [{**message_view(m), "ref": m.id} for m in await q.peek(n)]})


async def purge_messages(request: Request) -> JSON:
    q = await queue_of(request)
    refs = (await body_object(request)).get("refs")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, dict) and isinstance(r.get("ref"), str) for r in refs):
        raise bad(BAD_BODY, "refs must be a non-empty array of {ref}")
    ids = [r["ref"] for r in refs]
    warnings = {ref: "Message not found" for ref, deleted in zip(ids, await q.delete_messages(ids)) if not deleted}
    return ok({"warnings": warnings} if warnings else {})
