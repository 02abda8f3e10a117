"""IronMQ v3 REST API over the engine: the API of today's official clients (PyPI iron-mq 0.9, npm
iron_mq 0.9). Translation only: parse, engine calls, shape. The contract and each decision where
the sources disagree: docs/contracts/ironmq-v3.md.

What v3 changes from v1 (ironmq.py), over the same queues: JSON objects wrapped at the root
(``{"queue": ...}``, ``{"message": ...}``); reservation ids on the wire (touch answers a new one,
a stale one is 403 "Reservation timed out"); queue-level ``message_timeout`` and
``message_expiration``; push queues are created as such and a queue's type never changes;
subscribers have names; a missing queue is "Queue not found" everywhere but where a queue is
created (PUT queue, POST messages, POST webhook). A queue created here requeues lapsed and
released messages at its front (the engine's ``requeue`` setting).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute

from ferrymq.engine import AlreadyExists, Message, MessageNotFound, NewMessage, NotReserved, PushConfig, PushStatus
from ferrymq.engine import QueueInfo, QueueNotFound, Subscriber
from ferrymq.engine.aio import AsyncQueue

from . import errors
from ._common import JSON, engine, hot, query_params, read_body, read_json, reserved
from ._iron import DELAY, EXPIRES_IN, MAX_BATCH, PER_PAGE, TIMEOUT, WAIT, alert_ids, alert_view, alerts_of, batch
from ._iron import json_object, message_body, message_items, messages_of, mount, optional, project, push_config
from ._iron import query_int, queue, render_error, replacing_alerts, required_subscribers
from .errors import IRONMQ3, Problem

NEW_QUEUE = {"requeue": "front"}
"""Settings of a queue created through v3: timed-out and released messages go to the front."""
TYPES = ("pull", "multicast", "unicast")
MAX_RESERVATIONS = (1, 1000)
DEFAULT_MAX_RESERVATIONS = 10

errors.register("/3/", IRONMQ3, render_error)


# -- views ---------------------------------------------------------------------------------------


def seconds(value: float) -> int:
    return math.ceil(value)


def queue_view(info: QueueInfo) -> JSON:
    """``{"queue": ...}``; ``push`` only on push queues, ``alerts`` only when there are some,
    ``dead_letter`` only when a dead letter queue is set."""
    settings = info.settings
    view: dict[str, Any] = {
        "id": info.id[:24],  # 24 characters, as v1 shows it (the Python client reads it)
        "project_id": info.project,
        "name": info.name,
        "size": info.size,
        "total_messages": info.total_messages,
        "message_timeout": seconds(settings.timeout),
        "message_expiration": seconds(settings.expires_in),
        "type": settings.push.type if settings.push else "pull",
    }
    if settings.push:
        view["push"] = push_view(settings.push)
    if settings.alerts:
        view["alerts"] = [alert_view(a) for a in settings.alerts]
    if settings.dead_letter_queue:
        view["dead_letter"] = {"queue_name": settings.dead_letter_queue, "max_reservations": settings.max_deliveries}
    return JSON({"queue": view})


def push_view(push: PushConfig) -> dict[str, Any]:
    view: dict[str, Any] = {"subscribers": [subscriber_view(s) for s in push.subscribers], "retries": push.retries,
                            "retries_delay": seconds(push.retries_delay)}
    if push.error_queue:
        view["error_queue"] = push.error_queue
    return view


def subscriber_view(subscriber: Subscriber) -> dict[str, Any]:
    """A subscriber added through v1 has no name: its url stands for it (and removes it)."""
    view: dict[str, Any] = {"name": subscriber.name or subscriber.url, "url": subscriber.url}
    if subscriber.headers:
        view["headers"] = subscriber.headers
    return view


def message_view(message: Message) -> dict[str, Any]:
    return {"id": message.id, "body": message.text, "reserved_count": message.reserved_count}


def reserved_view(message: Message) -> dict[str, Any]:
    """Only the consumer that reserved a message learns its reservation id (a GET never shows it)."""
    return {**message_view(message), "reservation_id": message.reservation_id}


def push_status_view(status: PushStatus) -> dict[str, Any]:
    return {"name": status.name or status.url, "url": status.url, "status": status.status,
            "status_code": status.status_code, "retries_remaining": status.retries_remaining,
            "retries_delay": seconds(status.retries_delay)}


def posted(ids: list[str]) -> JSON:
    return JSON({"ids": ids, "msg": "Messages put on queue."}, status_code=201)


# -- requests ------------------------------------------------------------------------------------


def text_field(doc: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None or value == "":
        if required:
            raise Problem(406, f"{name} is required")
        return None
    if not isinstance(value, str):
        raise Problem(400, f"{name} must be a string")
    return value


def flag(doc: dict[str, Any], name: str) -> bool:
    value = doc.get(name, False)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise Problem(400, f"{name} must be true or false")


@dataclass(frozen=True)
class QueueSpec:
    """The ``queue`` object of a create or update, checked (nothing written yet)."""

    settings: dict[str, Any]
    """Engine settings: timeout, expires_in, dead_letter_queue, max_deliveries."""
    type: str | None
    push: dict[str, Any] | None
    alerts: list[Any] | None


def queue_spec(doc: Any) -> QueueSpec:
    """Every field is optional; the clients send ``{}`` when there is nothing to set."""
    body = json_object(doc).get("queue")
    body = {} if body is None else json_object(body, "queue")
    settings: dict[str, Any] = {
        "timeout": optional(body, "message_timeout", TIMEOUT, "message_timeout"),
        "expires_in": optional(body, "message_expiration", EXPIRES_IN, "message_expiration"),
        **dead_letter(body.get("dead_letter")),
    }
    kind = body.get("type")
    if kind is not None and kind not in TYPES:
        raise Problem(400, "type must be pull, multicast or unicast")
    push = body.get("push")
    alerts = body.get("alerts")
    return QueueSpec(
        {name: value for name, value in settings.items() if value is not None}, kind,
        None if push is None else json_object(push, "push"),
        None if alerts is None else replacing_alerts(body),
    )


def dead_letter(doc: Any) -> dict[str, Any]:
    """``{"queue_name", "max_reservations"}`` -> the engine's dead letter queue and delivery limit;
    an empty queue_name removes both."""
    if doc is None:
        return {}
    doc = json_object(doc, "dead_letter")
    name = text_field(doc, "queue_name")
    if name is None:
        if "queue_name" in doc and doc["queue_name"] == "":
            return {"dead_letter_queue": "", "max_deliveries": 0}
        raise Problem(406, "dead_letter.queue_name is required")
    most = optional(doc, "max_reservations", MAX_RESERVATIONS, "dead_letter.max_reservations")
    return {"dead_letter_queue": name, "max_deliveries": most or DEFAULT_MAX_RESERVATIONS}


def new_push(spec: QueueSpec) -> PushConfig | None:
    """The push settings a new queue gets: a ``push`` map or a push type makes a push queue
    (multicast unless said otherwise), which needs a subscriber."""
    kind = spec.type or ("multicast" if spec.push is not None else "pull")
    if kind == "pull":
        if spec.push is not None:
            raise Problem(400, "A pull queue has no push settings")
        return None
    if spec.settings.get("dead_letter_queue"):
        raise Problem(400, "A push queue has no dead_letter: use push.error_queue")
    config = push_config(spec.push or {}, None, named=True)
    if config is None:
        raise Problem(400, "A push queue needs at least one subscriber")
    return dataclasses.replace(config, type=kind)


def changed_push(doc: dict[str, Any]) -> Any:
    """The push settings after an update (the engine runs it again if another caller changed them
    meanwhile): given keys replace the current ones; a pull queue stays one."""

    def change(current: PushConfig | None) -> PushConfig | None:
        if current is None:
            raise Problem(400, "A pull queue has no push settings (a queue's type never changes)")
        return push_config(doc, current, named=True)

    return change


# -- queues --------------------------------------------------------------------------------------


async def list_queues(request: Request) -> JSON:
    """Name order; ``previous`` is the last name of the previous page, ``prefix`` filters."""
    owner = await project(request)
    per_page = query_int(request, "per_page", PER_PAGE, 30)
    previous = query_params(request).get("previous") or None
    prefix = query_params(request).get("prefix", "")
    refs = await engine(request).list_queues(owner, per_page=per_page, after=previous, prefix=prefix)
    return JSON({"queues": [{"name": r.name} for r in refs]})


async def get_queue(request: Request) -> JSON:
    return queue_view(await (await queue(request)).info())


async def create_queue(request: Request) -> JSON:
    """PUT: creates the queue with everything given, or, if it exists, changes what is given
    (alerts given replace the queue's: the Python client's update_alerts is a PUT)."""
    q = await queue(request)
    spec = queue_spec(await read_json(request))
    try:
        await q.info()
    except QueueNotFound:
        try:
            return queue_view(await create_new(q, spec))
        except AlreadyExists:
            pass  # created meanwhile: change it
    return queue_view(await change_queue(q, spec, replace_alerts=True))


async def create_new(q: AsyncQueue, spec: QueueSpec) -> QueueInfo:
    """Everything but alerts in one engine call (a refused setting creates nothing); alerts then
    go through the alert verb (it gives them ids and refuses progressive cycles)."""
    push = new_push(spec)
    if push is not None and spec.alerts:
        raise Problem(400, "Push queues do not support alerts.")
    info = await q.create(**spec.settings, **NEW_QUEUE, push=push)
    if spec.alerts:
        info = await q.replace_alerts(spec.alerts, create=False)
    return info


async def update_queue(request: Request) -> JSON:
    """PATCH: changes what is given (alerts given are added: the Python client's add_alerts)."""
    q = await queue(request)
    return queue_view(await change_queue(q, queue_spec(await read_json(request)), replace_alerts=False))


async def change_queue(q: AsyncQueue, spec: QueueSpec, *, replace_alerts: bool) -> QueueInfo:
    """Each part through the engine verb made for it (push settings and alerts are read-modify-
    writes that lose no concurrent change). ``QueueNotFound`` if the queue is missing."""
    info = None
    if spec.type is not None or spec.settings.get("dead_letter_queue"):
        info = await q.info()
        kind = info.settings.push.type if info.settings.push else "pull"
        if spec.type is not None and spec.type != kind:
            raise Problem(400, f"The queue is a {kind} queue: a queue's type never changes")
        if kind != "pull" and spec.settings.get("dead_letter_queue"):
            raise Problem(400, "A push queue has no dead_letter: use push.error_queue")
    if spec.push is not None:
        info = await q.update_push(changed_push(spec.push), create=False)
    if spec.alerts is not None:
        info = await (q.replace_alerts if replace_alerts else q.add_alerts)(spec.alerts, create=False)
    if spec.settings or info is None:
        info = await q.update(**spec.settings)
    return info


async def delete_queue(request: Request) -> JSON:
    q = await queue(request)
    await read_body(request)  # Node sends {}
    await q.delete()
    return JSON({"msg": "Deleted"})


# -- messages ------------------------------------------------------------------------------------


@hot
async def post_messages(request: Request) -> JSON:
    q = await queue(request)
    items = message_items(await read_json(request))
    messages = messages_of(items, new_message, engine(request).limits.max_body_bytes)
    return posted(await q.put(messages, new_queue=NEW_QUEUE))


def new_message(item: Any, i: int) -> NewMessage:
    """``body`` and ``delay``; timeout and expiration are the queue's in v3 (ignored here)."""
    body = message_body(item, i)
    if item.get("push_headers"):
        raise Problem(400, f"messages[{i}].push_headers are not supported: set headers on the subscribers")
    return NewMessage(body, delay=optional(item, "delay", DELAY, f"messages[{i}].delay"))


async def post_webhook(request: Request) -> JSON:
    q = await queue(request)
    return posted(await q.put([await read_body(request)], new_queue=NEW_QUEUE))


@hot
async def reserve_messages(request: Request) -> JSON:
    q = await queue(request)
    doc = json_object(await read_json(request))
    n = optional(doc, "n", (1, MAX_BATCH)) or 1
    timeout = optional(doc, "timeout", TIMEOUT)
    wait = optional(doc, "wait", WAIT) or 0
    reserve = q.reserve(n, timeout=timeout, delete=flag(doc, "delete"), wait=wait, must_exist=True)
    got = await reserved(request, reserve, wait=wait)
    return JSON({"messages": [reserved_view(m) for m in got]})


async def peek_messages(request: Request) -> JSON:
    q = await queue(request)
    n = query_int(request, "n", (1, MAX_BATCH), 1)
    return JSON({"messages": [message_view(m) for m in await q.peek(n, must_exist=True)]})


async def get_message(request: Request) -> JSON:
    q = await queue(request)
    return JSON({"message": message_view(await q.get(request.path_params["message_id"]))})


@hot
async def delete_message(request: Request) -> JSON:
    """With ``subscriber_name``, a push subscriber that answered 202 acknowledges its delivery:
    ``reservation_id`` is then the Iron-Reservation-Id of the push."""
    q = await queue(request)
    doc = json_object(await read_json(request))
    message_id, rid = request.path_params["message_id"], text_field(doc, "reservation_id")
    if text_field(doc, "subscriber_name") is not None:
        if rid is None:
            raise Problem(406, "reservation_id is required to acknowledge a push")
        await q.ack_push_by_token(message_id, rid)
    else:
        await q.delete_message(message_id, rid)
    return JSON({"msg": "Deleted"})


@hot
async def delete_messages(request: Request) -> JSON:
    """With ``ids``, deletes those messages (each under its reservation id, if given); without,
    clears the queue (v3 folded clear into this route)."""
    q = await queue(request)
    doc = json_object(await read_json(request))
    if "ids" not in doc:
        await q.clear()
        return JSON({"msg": "Cleared"})
    settled = await q.settle(deletes=message_refs(doc["ids"]))
    if "not_reserved" in settled.deleted:  # the others are deleted
        raise NotReserved()
    if "not_found" in settled.deleted:
        raise MessageNotFound()
    return JSON({"msg": "Deleted"})


def message_refs(items: Any) -> list[tuple[str, str | None]]:
    """``[{"id", "reservation_id"?}]`` (plain ids too) -> (id, reservation id) pairs."""
    refs = []
    for i, item in enumerate(batch(items, "ids")):
        item = {"id": item} if isinstance(item, str) else json_object(item, f"ids[{i}]")
        refs.append((text_field(item, "id", required=True), text_field(item, "reservation_id")))
    return refs


async def touch_message(request: Request) -> JSON:
    q = await queue(request)
    doc = json_object(await read_json(request))
    rid = text_field(doc, "reservation_id", required=True)
    renewed = await q.touch(request.path_params["message_id"], rid, timeout=optional(doc, "timeout", TIMEOUT))
    return JSON({"reservation_id": renewed.reservation_id, "msg": "Touched"})


async def release_message(request: Request) -> JSON:
    q = await queue(request)
    doc = json_object(await read_json(request))
    rid = text_field(doc, "reservation_id", required=True)
    await q.release(request.path_params["message_id"], rid, delay=optional(doc, "delay", DELAY))
    return JSON({"msg": "Released"})


# -- push queues ---------------------------------------------------------------------------------


async def add_subscribers(request: Request) -> JSON:
    """Adds subscribers, or replaces those of the same name; push queues only."""
    q = await queue(request)
    await q.add_subscribers(required_subscribers(json_object(await read_json(request)), named=True), fixed_type=True)
    return JSON({"msg": "Updated"})


async def replace_subscribers(request: Request) -> JSON:
    q = await queue(request)
    await q.replace_subscribers(required_subscribers(json_object(await read_json(request)), named=True))
    return JSON({"msg": "Updated"})


async def remove_subscribers(request: Request) -> JSON:
    """By name (a subscriber without one, added through v1, by its url); one must stay."""
    q = await queue(request)
    items = json_object(await read_json(request)).get("subscribers")
    if not items:
        raise Problem(406, "subscribers is required")
    if not isinstance(items, list):
        raise Problem(400, "subscribers must be an array")
    keys = []
    for i, item in enumerate(items):
        item = json_object(item, f"subscribers[{i}]")
        key = text_field(item, "name") or text_field(item, "url")
        if key is None:
            raise Problem(406, f"subscribers[{i}].name is required")
        keys.append(key)
    await q.remove_subscribers(keys, fixed_type=True)
    return JSON({"msg": "Updated"})


async def message_subscribers(request: Request) -> JSON:
    q = await queue(request)
    statuses = await q.push_status(request.path_params["message_id"])
    return JSON({"subscribers": [push_status_view(s) for s in statuses]})


# -- alerts --------------------------------------------------------------------------------------


def alerts_doc(doc: Any) -> dict[str, Any]:
    """``{"alerts": [...]}``, or wrapped at the root as the Python client's remove_alerts sends it."""
    doc = json_object(doc)
    return json_object(doc["queue"], "queue") if isinstance(doc.get("queue"), dict) else doc


async def add_alerts(request: Request) -> JSON:
    q = await queue(request)
    await q.add_alerts(alerts_of(alerts_doc(await read_json(request))), create=False)  # the engine refuses push queues
    return JSON({"msg": "Updated"})


async def replace_alerts(request: Request) -> JSON:
    q = await queue(request)
    await q.replace_alerts(replacing_alerts(alerts_doc(await read_json(request))), create=False)
    return JSON({"msg": "Updated"})


async def remove_alerts(request: Request) -> JSON:
    q = await queue(request)
    await q.remove_alerts(alert_ids(alerts_doc(await read_json(request)).get("alerts")), create=False)
    return JSON({"msg": "Deleted"})


async def remove_alert(request: Request) -> JSON:
    q = await queue(request)
    await read_body(request)
    await q.remove_alert(request.path_params["alert_id"])
    return JSON({"msg": "Deleted"})


# -- routing -------------------------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    table = [
        ("/queues", list_queues, "GET"),
        ("/queues/{queue}", get_queue, "GET"),
        ("/queues/{queue}", create_queue, "PUT"),
        ("/queues/{queue}", update_queue, "PATCH"),
        ("/queues/{queue}", delete_queue, "DELETE"),
        ("/queues/{queue}/messages", post_messages, "POST"),
        ("/queues/{queue}/messages", peek_messages, "GET"),
        ("/queues/{queue}/messages", delete_messages, "DELETE"),
        ("/queues/{queue}/webhook", post_webhook, "POST"),
        ("/queues/{queue}/reservations", reserve_messages, "POST"),
        ("/queues/{queue}/messages/{message_id}", get_message, "GET"),
        ("/queues/{queue}/messages/{message_id}", delete_message, "DELETE"),
        ("/queues/{queue}/messages/{message_id}/touch", touch_message, "POST"),
        ("/queues/{queue}/messages/{message_id}/release", release_message, "POST"),
        ("/queues/{queue}/messages/{message_id}/subscribers", message_subscribers, "GET"),
        ("/queues/{queue}/subscribers", add_subscribers, "POST"),
        ("/queues/{queue}/subscribers", replace_subscribers, "PUT"),
        ("/queues/{queue}/subscribers", remove_subscribers, "DELETE"),
        ("/queues/{queue}/alerts", add_alerts, "POST"),
        ("/queues/{queue}/alerts", replace_alerts, "PUT"),
        ("/queues/{queue}/alerts", remove_alerts, "DELETE"),
        ("/queues/{queue}/alerts/{alert_id}", remove_alert, "DELETE"),
    ]
    return mount("/3/projects/{project_id}", table)
