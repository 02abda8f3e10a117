"""Cloudflare Queues REST API (v4 envelope) over the engine. Translation only: parse, engine
calls, shape. The contract and every choice made where sources disagree:
../shared/notes/cloudflare-queues.md.

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
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import math
import re
import secrets
from datetime import datetime, timezone
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from ferrymq.engine import QUEUE_EVENTS, Backlog, Message, NewMessage, QueueNotFound, Subscription
from ferrymq.engine.aio import AsyncQueue
from ferrymq.engine.errors import InvalidArgument
from ferrymq.engine.models import QueueDetails, QueueInfo

from . import errors
from ._common import JSON, auth, bearer, client_address, engine, integer, read_json, too_deep
from .errors import CLOUDFLARE, Problem

# Limits (notes §4). Message sizes count the stored body.
MESSAGE_BYTES, BATCH_BYTES, BATCH_MESSAGES = 128_000, 256_000, 100
DELAY = (0, 86_400)
RETENTION = (60, 1_209_600)
VISIBILITY_MS = (1, 43_200_000)
PULL_BATCH = (1, 100)
MAX_RETRIES = (0, 100)
MAX_WAIT_MS = (0, 60_000)
MAX_CONCURRENCY = (1, 250)
LIST_ALL_LIMIT = 10_000

# Defaults (notes §4).
RETENTION_DEFAULT = 345_600
PULL_DEFAULTS = {"batch_size": 5, "max_retries": 3, "retry_delay": 0, "visibility_timeout_ms": 30_000}
WORKER_DEFAULTS = {"batch_size": 10, "max_concurrency": None, "max_retries": 3, "max_wait_time_ms": 5_000, "retry_delay": 0}
CONSUMER_ATTR, PURGE_ATTR, JURISDICTION_ATTR = "cf_consumer", "cf_purge_started", "cf_jurisdiction"
CONTENT_TYPES = ("text", "json", "bytes")
JURISDICTIONS = ("eu", "us", "fedramp")

# Codes (notes §3).
AUTH, BAD_BODY, BAD_NAME, BAD_SETTINGS, BAD_CONSUMER = 10000, 10026, 11003, 100128, 100127
NOT_FOUND, CONSUMER_EXISTS = 11002, 11004
BAD_MESSAGE, BAD_DELAY_OR_TYPE, TOO_BIG, BATCH_TOO_BIG, TOO_MANY = 10207, 10203, 10204, 10205, 10206


# -- envelope ------------------------------------------------------------------------------------


def ok(result: Any, *, info: dict[str, int] | None = None) -> JSON:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if info is not None:
        body["result_info"] = info
    return JSON(body)


def render_error(problem: Problem) -> JSON:
    code = problem.code if isinstance(problem.code, int) else 10000 if problem.status < 500 else 15000
    headers = dict(problem.headers)
    if problem.status in (409, 500) or (400 <= problem.status < 500 and problem.status != 429):
        headers["x-should-retry"] = "false"  # the same request would fail the same way
    body = {"success": False, "errors": [{"code": code, "message": problem.text}], "messages": [], "result": None}
    return JSON(body, status_code=problem.status, headers=headers)


errors.register("/client/v4/", CLOUDFLARE, render_error)


def bad(code: int, text: str, status: int = 400) -> Problem:
    return Problem(status, text, code=code)


# -- requests ------------------------------------------------------------------------------------


async def account(request: Request) -> str:
    """The path's account, which must be the token's project. Tokens come as the SDK sends them."""
    token = (
        bearer(request, "bearer")
        or request.headers.get("x-auth-key")
        or request.headers.get("x-auth-user-service-key")
    )
    project = await auth(request).project_of(token, client_address(request))
    if project is None:
        raise bad(AUTH, "Authentication error", 401)
    if project != request.path_params["account_id"]:
        raise bad(AUTH, "Authentication error", 403)
    return project


class QueueNames:
    """(project, queue id) -> the name the queue was found under. An id names one queue for
    ever (a queue created again gets a new id), so an entry can outlive its queue but never
    point at another: each use still checks the id is current, in one Redis call instead of
    two, or not at all where the engine call checks it itself (push). Per app; cleared when
    it holds ``size`` ids."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._names: dict[tuple[str, str], str] = {}

    def get(self, project: str, queue_id: str) -> str | None:
        return self._names.get((project, queue_id))

    def remember(self, project: str, queue_id: str, name: str) -> None:
        if len(self._names) >= self.size:
            self._names.clear()
        self._names[project, queue_id] = name


def queue_names(request: Request) -> QueueNames:
    found = getattr(request.app.state, "cloudflare_queue_names", None)
    if found is None:
        found = request.app.state.cloudflare_queue_names = QueueNames()
    return found


async def queue_of(request: Request, *, checked: bool = True) -> AsyncQueue:
    """The path's queue. ``checked=False``: a queue whose name is known is not looked up at all,
    for an engine call given the id, which refuses a deleted queue itself (push)."""
    project = await account(request)
    queue_id, names = request.path_params["queue_id"], queue_names(request)
    name = names.get(project, queue_id)
    if name is None or checked:
        ref = await engine(request).find_queue(project, queue_id, name=name)
        if ref is None:
            raise QueueNotFound()
        name = ref.name
        names.remember(project, queue_id, name)
    return engine(request).queue(project, name)


async def body_object(request: Request) -> dict[str, Any]:
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise bad(BAD_BODY, "Invalid request body")
    return doc


def number(value: Any, name: str, bounds: tuple[int, int], code: int) -> int:
    """A whole number within bounds (the SDK sends floats for numbers: 30.0 is fine)."""
    try:
        return integer(value, name, *bounds)
    except Problem as problem:
        raise bad(code, problem.text) from None


def timestamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def seconds(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


# -- queues --------------------------------------------------------------------------------------


def queue_view(queue: QueueInfo | QueueDetails) -> dict[str, Any]:
    s = queue.settings
    consumer = stored_consumer(queue.attrs)
    view: dict[str, Any] = {
        "queue_id": queue.id,
        "queue_name": queue.name,
        "created_on": timestamp(queue.created_at),
        "modified_on": timestamp(queue.updated_at),
        "producers": [],
        "producers_total_count": 0,
        "consumers": [consumer_view(consumer, queue)] if consumer else [],
        "consumers_total_count": 1 if consumer else 0,
        "settings": {
            "delivery_delay": seconds(s.delay),
            "delivery_paused": s.paused,
            "message_retention_period": seconds(s.expires_in),
        },
    }
    if queue.attrs.get(JURISDICTION_ATTR):
        view["jurisdiction"] = queue.attrs[JURISDICTION_ATTR]
    return view


def queue_name(doc: dict[str, Any]) -> str:
    name = doc.get("queue_name")
    if not isinstance(name, str) or not name.strip():
        raise bad(BAD_NAME, "Invalid queue name")
    return name


def queue_settings(doc: dict[str, Any], *, full: bool) -> dict[str, Any]:
    """Engine settings from ``settings``: all of them (PUT: omitted ones return to defaults) or
    only those given (POST, PATCH)."""
    given = doc.get("settings") or {}
    if not isinstance(given, dict):
        raise bad(BAD_SETTINGS, "settings must be an object")
    out: dict[str, Any] = {"delay": 0, "paused": False, "expires_in": RETENTION_DEFAULT} if full else {}
    if given.get("delivery_delay") is not None:
        out["delay"] = number(given["delivery_delay"], "delivery_delay", DELAY, BAD_SETTINGS)
    if given.get("delivery_paused") is not None:
        if not isinstance(given["delivery_paused"], bool):
            raise bad(BAD_SETTINGS, "delivery_paused must be true or false")
        out["paused"] = given["delivery_paused"]
    if given.get("message_retention_period") is not None:
        out["expires_in"] = number(given["message_retention_period"], "message_retention_period", RETENTION, BAD_SETTINGS)
    return out


def jurisdiction(doc: dict[str, Any]) -> dict[str, str | None]:
    value = doc.get("jurisdiction")
    if value is not None and value not in JURISDICTIONS:
        raise bad(BAD_SETTINGS, f"jurisdiction must be one of {', '.join(JURISDICTIONS)}")
    return {JURISDICTION_ATTR: value} if value else {}


async def create_queue(request: Request) -> JSON:
    project = await account(request)
    doc = await body_object(request)
    name = queue_name(doc)
    try:
        q = engine(request).queue(project, name)
    except InvalidArgument:
        raise bad(BAD_NAME, "Invalid queue name") from None
    settings = {"timeout": PULL_DEFAULTS["visibility_timeout_ms"] / 1000, "max_deliveries": PULL_DEFAULTS["max_retries"] + 1}
    settings.update(queue_settings(doc, full=True))
    return ok(queue_view(await q.create(attrs=jurisdiction(doc), **settings)))


async def list_queues(request: Request) -> JSON:
    project = await account(request)
    params = request.query_params
    names = set(params.getlist("name"))
    if "page" not in params and "per_page" not in params:  # the SDK reads one page: give them all
        found = await all_queues(request, project)
        found = [q for q in found if not names or q.name in names]
        return ok([queue_view(q) for q in found], info=page_info(1, len(found), len(found), len(found)))
    page = number(params.get("page", "1"), "page", (1, 2**31), BAD_BODY)
    per_page = number(params.get("per_page", "100"), "per_page", (1, 1000), BAD_BODY)
    if names:
        found = [q for q in await all_queues(request, project) if q.name in names]
        chunk, total = found[(page - 1) * per_page : page * per_page], len(found)
    else:
        chunk = await engine(request).list_details(project, page=page - 1, per_page=per_page)
        total = await engine(request).count_queues(project)
    return ok([queue_view(q) for q in chunk], info=page_info(page, per_page, len(chunk), total))


async def all_queues(request: Request, project: str) -> list[QueueDetails]:
    found: list[QueueDetails] = []
    for page in range(LIST_ALL_LIMIT // 1000):
        chunk = await engine(request).list_details(project, page=page, per_page=1000)
        found += chunk
        if len(chunk) < 1000:
            break
    return found


def page_info(page: int, per_page: int, count: int, total: int) -> dict[str, int]:
    return {"page": page, "per_page": per_page, "count": count, "total_count": total,
            "total_pages": max(1, math.ceil(total / per_page)) if per_page else 1}


async def get_queue(request: Request) -> JSON:
    return ok(queue_view(await (await queue_of(request)).info()))


async def update_queue(request: Request) -> JSON:
    """PUT replaces the configuration; PATCH changes only what it names."""
    q = await queue_of(request)
    doc = await body_object(request)
    full = request.method == "PUT"
    if full or "queue_name" in doc:
        if queue_name(doc) != q.name:
            raise bad(BAD_NAME, "Invalid queue name: a queue cannot be renamed")
    attrs = jurisdiction(doc) if "jurisdiction" in doc else {}
    return ok(queue_view(await q.update(attrs=attrs, **queue_settings(doc, full=full))))


async def delete_queue(request: Request) -> JSON:
    await (await queue_of(request)).delete()
    return ok(None)


def metrics(backlog: Backlog | QueueInfo) -> dict[str, int]:
    return {"backlog_count": backlog.size, "backlog_bytes": backlog.bytes, "oldest_message_timestamp_ms": backlog.oldest_at}


async def queue_metrics(request: Request) -> JSON:
    return ok(metrics(await (await queue_of(request)).info()))


# -- consumers -----------------------------------------------------------------------------------


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


def now_ms(request: Request) -> int:
    return engine(request).clock.wall_ms()


# -- messages ------------------------------------------------------------------------------------


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


async def push_message(request: Request) -> JSON:
    q = await queue_of(request, checked=False)
    message = new_message(await body_object(request), "")
    pushed = await q.push([message], queue_id=request.path_params["queue_id"])
    return ok({"metadata": {"metrics": metrics(pushed.backlog)}})


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


# -- purge ---------------------------------------------------------------------------------------


async def start_purge(request: Request) -> JSON:
    q = await queue_of(request)
    if (await body_object(request)).get("delete_messages_permanently") is not True:
        raise bad(BAD_BODY, "delete_messages_permanently must be true")
    await q.clear()  # one call: the purge is complete when it returns
    info = await q.update(attrs={PURGE_ATTR: timestamp(now_ms(request))})
    return ok(queue_view(info))


async def purge_status(request: Request) -> JSON:
    started = (await (await queue_of(request)).info()).attrs.get(PURGE_ATTR)
    # completed is a string for the SDK and the API schema; wrangler reads a boolean "complete"
    return ok({"started_at": started, "completed": "true", "complete": True} if started else {})


# -- event subscriptions -------------------------------------------------------------------------

SOURCE_TYPES = ("ferrymq.queue", "images", "kv", "r2", "superSlurper", "vectorize", "workersAi.model",
                "workersBuilds.worker", "workers.script", "workflows.workflow")
OUR_EVENTS = (*QUEUE_EVENTS, "consumer.created")
SOURCE_BYTES, SOURCE_DEPTH = 1024, 3
EVENT_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*(\.[a-zA-Z][a-zA-Z0-9_]*)+\Z")
ORDERS = {"created_at": lambda s: s.created_at, "name": lambda s: s.name, "enabled": lambda s: s.enabled,
          "source": lambda s: str(s.attrs["source"].get("type", ""))}


def subscription_view(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id, "name": sub.name, "enabled": sub.enabled,
        "source": sub.attrs["source"], "destination": sub.attrs["destination"],
        "events": list(sub.attrs["events"]),
        "created_at": timestamp(sub.created_at), "modified_at": timestamp(sub.modified_at),
    }


def short_events(source_type: str, events: Any) -> tuple[str, ...]:
    """Event names without their "cf.<source>." or "ferrymq.queue." prefix; ours must be known."""
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise bad(BAD_BODY, "events must be a non-empty array of event names")
    prefix = "ferrymq.queue." if source_type == "ferrymq.queue" else f"cf.{source_type}."
    short = tuple(e.removeprefix(prefix) for e in events)
    known = OUR_EVENTS if source_type == "ferrymq.queue" else None
    if any(not EVENT_NAME.match(e) or (known is not None and e not in known) for e in short):
        raise bad(BAD_BODY, "Unrecognized event types")
    return short


async def subscription_source(request: Request, project: str, source: Any) -> str | None:
    """The engine queue a source watches (None for a Cloudflare platform source). Sources are
    small, flat objects; every event reads every stored one, so they are bounded."""
    if not isinstance(source, dict) or source.get("type") not in SOURCE_TYPES:
        raise bad(BAD_BODY, f"source.type must be one of {', '.join(SOURCE_TYPES)}")
    if too_deep(source, SOURCE_DEPTH) is not None or len(orjson.dumps(source)) > SOURCE_BYTES:
        raise bad(BAD_BODY, f"source must take at most {SOURCE_BYTES} bytes, nested at most {SOURCE_DEPTH} levels")
    if source["type"] != "ferrymq.queue":
        return None
    name = source.get("queue_name")
    if not isinstance(name, str) or not name:
        raise bad(BAD_BODY, "a ferrymq.queue source needs queue_name")
    try:
        await engine(request).queue(project, name).info()
    except (QueueNotFound, InvalidArgument):
        raise bad(11000, "Source queue not found", 404) from None
    return name


async def subscription_destination(request: Request, project: str, destination: Any) -> str:
    if not isinstance(destination, dict) or destination.get("type") != "queues.queue":
        raise bad(BAD_BODY, "destination must be {type: queues.queue, queue_id}")
    ref = await engine(request).find_queue(project, str(destination.get("queue_id")))
    if ref is None:
        raise bad(11000, "Destination queue not found", 404)
    return ref.name


async def create_subscription(request: Request) -> JSON:
    project = await account(request)
    doc = await body_object(request)
    name, enabled = doc.get("name"), doc.get("enabled", True)
    if not isinstance(name, str) or not name or not isinstance(enabled, bool):
        raise bad(BAD_BODY, "name (a string) is required and enabled must be true or false")
    source = doc.get("source")
    source_queue = await subscription_source(request, project, source)
    destination = await subscription_destination(request, project, doc.get("destination"))
    events = short_events(source["type"], doc.get("events"))
    for existing in await engine(request).list_subscriptions(project):
        if existing.attrs["source"] == source:
            raise bad(BAD_BODY, "Multiple subscriptions on same resource not supported", 405)
    now = now_ms(request)
    sub = Subscription(secrets.token_hex(16), name, enabled, source_queue, events, destination, now, now,
                       {"source": source, "destination": doc["destination"], "events": doc["events"]})
    return ok(subscription_view(await engine(request).put_subscription(project, sub)))


async def list_subscriptions(request: Request) -> JSON:
    project = await account(request)
    params = request.query_params
    page = number(params.get("page", "1"), "page", (1, 2**31), BAD_BODY)
    per_page = number(params.get("per_page", "20"), "per_page", (1, 100), BAD_BODY)
    order, direction = params.get("order", "name"), params.get("direction", "asc")
    if order not in ORDERS or direction not in ("asc", "desc"):
        raise bad(BAD_BODY, "order must be created_at, name, enabled or source; direction asc or desc")
    subs = await engine(request).list_subscriptions(project)
    if params.get("queue_id"):
        subs = [s for s in subs if s.attrs["destination"].get("queue_id") == params["queue_id"]]
    subs.sort(key=ORDERS[order], reverse=direction == "desc")
    chunk = subs[(page - 1) * per_page : page * per_page]
    return ok([subscription_view(s) for s in chunk], info=page_info(page, per_page, len(chunk), len(subs)))


async def subscription_of(request: Request) -> tuple[str, Subscription]:
    project = await account(request)
    sub = await engine(request).get_subscription(project, request.path_params["subscription_id"])
    if sub is None:
        raise bad(NOT_FOUND, "Event subscription not found", 404)
    return project, sub


async def get_subscription(request: Request) -> JSON:
    return ok(subscription_view((await subscription_of(request))[1]))


async def update_subscription(request: Request) -> JSON:
    project, sub = await subscription_of(request)
    doc = await body_object(request)
    if "source" in doc and doc["source"] != sub.attrs["source"]:
        raise bad(BAD_BODY, "the source of a subscription cannot change")
    changes: dict[str, Any] = {"modified_at": now_ms(request), "attrs": dict(sub.attrs)}
    if "name" in doc:
        if not isinstance(doc["name"], str) or not doc["name"]:
            raise bad(BAD_BODY, "name must be a non-empty string")
        changes["name"] = doc["name"]
    if "enabled" in doc:
        if not isinstance(doc["enabled"], bool):
            raise bad(BAD_BODY, "enabled must be true or false")
        changes["enabled"] = doc["enabled"]
    if "events" in doc:
        changes["events"] = short_events(sub.attrs["source"]["type"], doc["events"])
        changes["attrs"]["events"] = doc["events"]
    if "destination" in doc:
        changes["destination_queue"] = await subscription_destination(request, project, doc["destination"])
        changes["attrs"]["destination"] = doc["destination"]
    updated = dataclasses.replace(sub, **changes)
    return ok(subscription_view(await engine(request).put_subscription(project, updated)))


async def delete_subscription(request: Request) -> JSON:
    project, sub = await subscription_of(request)
    await engine(request).delete_subscription(project, sub.id)
    return ok(subscription_view(sub))


# -- routing -------------------------------------------------------------------------------------


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
