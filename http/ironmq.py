"""IronMQ v1 REST API (pull queues) over the engine. Translation only: parse, one engine call,
shape. The contract, with the quirks real clients depend on: docs/contracts/ironmq-v1.md.

Every success is 200 with ``Content-Type: application/json`` exactly; errors are ``{"msg": ...}``.
Zeros mean "default"; empty POST bodies and bodies on DELETE are accepted; unknown keys are
ignored. A missing queue reads as empty (v1 "virtual queues").
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute

from ferrymq.engine import AlertNotFound, Message, MessageNotFound, NewMessage, PushStatus, QueueInfo, QueueNotFound
from ferrymq.engine import Subscriber

from . import errors
from ._common import JSON, auth, client_address, engine, hot, query_params, read_body, read_json, reserved
from ._iron import DELAY, EXPIRES_IN, MAX_BATCH, PER_PAGE, TIMEOUT, WAIT, alert_ids, alert_view, alerts_of
from ._iron import json_object, message_body, message_items, messages_of, mount, optional, project, push_config
from ._iron import query_int, queue, render_error, replacing_alerts, required_subscribers
from .errors import IRONMQ, Problem

STATUS = {"ready": "queued", "delayed": "queued", "reserved": "reserved", "pushing": "queued", "pushed": "deleted"}


errors.register("/", IRONMQ, render_error)  # IronMQ's envelope also answers unknown paths


# -- views ---------------------------------------------------------------------------------------


def message_view(message: Message) -> dict[str, Any]:
    return messages_view([message])[0]


def messages_view(messages: list[Message]) -> list[dict[str, Any]]:
    """Each message's object: one comprehension, no call per message (a GET of 100). The timeout
    in whole seconds, at least 1 (ceil of anything up to 1 is 1 or less)."""
    return [{"id": m.id, "body": m.body.decode("utf-8", "replace"),
             "timeout": math.ceil(m.timeout) if m.timeout > 1 else 1, "reserved_count": m.reserved_count}
            for m in messages]


def queue_view(info: QueueInfo) -> dict[str, Any]:
    """The queue object; push keys only on push queues, ``error_queue`` only when set, ``alerts``
    only when there are some (clients tell a pull queue by the absent keys)."""
    view: dict[str, Any] = {
        "id": info.id[:24],  # IronMQ ids are 24 hex characters; the engine's are 32
        "name": info.name,
        "project_id": info.project,
        "size": info.size,
        "total_messages": info.total_messages,
    }
    push = info.settings.push
    if push is not None:
        view.update(push_type=push.type, retries=push.retries, retries_delay=round(push.retries_delay),
                    subscribers=[subscriber_view(s) for s in push.subscribers])
        if push.error_queue:
            view["error_queue"] = push.error_queue
    if info.settings.alerts:
        view["alerts"] = [alert_view(a) for a in info.settings.alerts]
    return view


def subscriber_view(subscriber: Subscriber) -> dict[str, Any]:
    return {"url": subscriber.url, "headers": subscriber.headers} if subscriber.headers else {"url": subscriber.url}


def push_status_view(status: PushStatus) -> dict[str, Any]:
    """With ``msg`` (the last attempt's error, as in error-queue messages) once an attempt failed."""
    view = {"id": status.id, "url": status.url, "status": status.status, "status_code": status.status_code,
            "retries_remaining": status.retries_remaining, "retries_delay": round(status.retries_delay)}
    if status.error:
        view["msg"] = status.error
    return view


def posted(ids: list[str]) -> JSON:
    return JSON({"ids": ids, "msg": "Messages put on queue."})


# -- queues --------------------------------------------------------------------------------------


async def list_queues(request: Request) -> JSON:
    owner = await project(request)
    page = query_int(request, "page", (0, 2**31), 0)
    per_page = query_int(request, "per_page", PER_PAGE, 30)
    refs = await engine(request).list_queues(owner, page=page, per_page=per_page)
    return JSON([{"id": r.id[:24], "project_id": r.project, "name": r.name} for r in refs])


async def get_queue(request: Request) -> JSON:
    return JSON(queue_view(await (await queue(request)).info()))


async def update_queue(request: Request) -> JSON:
    """Creates the queue if needed; push settings in the body make (or keep) it a push queue,
    ``push_type: pull`` turns it back. Other keys are ignored (Java sends ``pushType``)."""
    q = await queue(request)
    doc = json_object(await read_json(request))
    if not PUSH_KEYS & doc.keys():
        return JSON(queue_view(await q.ensure()))
    return JSON(queue_view(await q.update_push(lambda current: push_config(doc, current))))


async def delete_queue(request: Request) -> JSON:
    await (await queue(request)).delete()
    return JSON({"msg": "Deleted."})


async def clear_queue(request: Request) -> JSON:
    try:
        await (await queue(request)).clear()
    except QueueNotFound:
        pass  # clearing a queue that does not exist leaves it empty: fine
    return JSON({"msg": "Cleared"})


# -- messages ------------------------------------------------------------------------------------


@hot
async def post_messages(request: Request) -> JSON:
    q = await queue(request)
    items = message_items(await read_json(request))
    return posted(await q.put(messages_of(items, new_message, engine(request).limits.max_body_bytes)))


def new_message(item: Any, i: int) -> NewMessage:
    body = message_body(item, i)
    if len(item) == 1:
        return NewMessage(body)  # the body alone (most posts): every default
    return NewMessage(
        body,
        timeout=optional(item, "timeout", TIMEOUT),
        delay=optional(item, "delay", DELAY),
        expires_in=optional(item, "expires_in", EXPIRES_IN),
    )


async def post_webhook(request: Request) -> JSON:
    q = await queue(request)
    return posted(await q.put([await read_body(request)]))


@hot
async def get_messages(request: Request) -> JSON:
    q = await queue(request)
    n = query_int(request, "n", (1, MAX_BATCH), 1)
    timeout = query_int(request, "timeout", TIMEOUT, 0) or None
    wait = query_int(request, "wait", WAIT, 0)
    delete = query_params(request).get("delete", "false").lower()
    if delete not in ("true", "false"):
        raise Problem(400, "delete must be true or false")
    got = await reserved(request, q.reserve(n, timeout=timeout, delete=delete == "true", wait=wait), wait=wait)
    return JSON({"messages": messages_view(got)})


async def peek_messages(request: Request) -> JSON:
    q = await queue(request)
    n = query_int(request, "n", (1, MAX_BATCH), 1)
    return JSON({"messages": messages_view(await q.peek(n))})


async def get_message(request: Request) -> JSON:
    q = await queue(request)
    message = await q.get(request.path_params["message_id"])
    return JSON({**message_view(message), "status": STATUS[message.status]})


async def delete_message(request: Request) -> JSON:
    q = await queue(request)
    await read_body(request)  # Node and PHP send {}
    await q.delete_message(request.path_params["message_id"])
    return JSON({"msg": "Deleted"})


@hot
async def delete_messages(request: Request) -> JSON:
    q = await queue(request)
    doc = await read_json(request)
    ids = doc.get("ids") if isinstance(doc, dict) else None
    if not ids:
        raise Problem(406, "ids is required")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise Problem(400, "ids must be an array of message ids")
    if len(ids) > MAX_BATCH:
        raise Problem(400, f"ids must hold at most {MAX_BATCH} ids")
    await q.delete_messages(ids)  # best effort: unknown ids are skipped
    return JSON({"msg": "Deleted"})


async def touch_message(request: Request) -> JSON:
    q = await queue(request)
    await read_json(request)
    await q.touch(request.path_params["message_id"])
    return JSON({"msg": "Touched"})


async def release_message(request: Request) -> JSON:
    q = await queue(request)
    doc = await read_json(request)
    delay = optional(doc, "delay", DELAY) if isinstance(doc, dict) else None
    await q.release(request.path_params["message_id"], delay=delay)  # None: the queue's retry delay (0)
    return JSON({"msg": "Released"})


# -- push queues ---------------------------------------------------------------------------------

PUSH_KEYS = {"push_type", "subscribers", "retries", "retries_delay", "error_queue"}


async def add_subscribers(request: Request) -> JSON:
    """Adds subscribers by url (an existing url gets the new headers); a pull queue becomes a
    multicast push queue."""
    q = await queue(request)
    given = required_subscribers(json_object(await read_json(request)))
    return JSON(queue_view(await q.add_subscribers(given)))


async def remove_subscribers(request: Request) -> JSON:
    """Removes subscribers by url; without any left the queue is a pull queue again."""
    q = await queue(request)
    gone = required_subscribers(json_object(await read_json(request)))
    return JSON(queue_view(await q.remove_subscribers(s.url for s in gone)))


async def message_subscribers(request: Request) -> JSON:
    q = await queue(request)
    statuses = await q.push_status(request.path_params["message_id"])
    return JSON({"subscribers": [push_status_view(s) for s in statuses]})


async def acknowledge_push(request: Request) -> JSON:
    """A subscriber that answered 202 acknowledges its delivery. The acknowledgement URL we sent
    carries the delivery's own token in ``oauth`` (never the project's): it works for that
    DELETE alone, and any other token is refused like a wrong project token."""
    message_id, sid = request.path_params["message_id"], request.path_params["subscriber_id"]
    try:
        q, token = await queue(request, count=False), None
    except Problem:
        token = query_params(request).get("oauth")
        if not token:
            raise
        q = engine(request).queue(request.path_params["project_id"], request.path_params["queue"])
    try:
        if not (sid.startswith(message_id) and len(sid) == len(message_id) + 2):
            raise MessageNotFound()
        await q.ack_push(sid, token)
    except (MessageNotFound, QueueNotFound):
        if token is not None:  # not this delivery's token, or no such delivery: same answer
            auth(request).failed(client_address(request))
            raise Problem(401, "Invalid project/token combination") from None
        raise
    return JSON({"msg": "Deleted"})


# -- alerts --------------------------------------------------------------------------------------


async def add_alerts(request: Request) -> JSON:
    q = await queue(request)
    await q.add_alerts(alerts_of(json_object(await read_json(request))))  # the engine refuses push queues
    return JSON({"msg": "Updated"})


async def replace_alerts(request: Request) -> JSON:
    q = await queue(request)
    await q.replace_alerts(replacing_alerts(json_object(await read_json(request))))
    return JSON({"msg": "Updated"})


async def remove_alerts(request: Request) -> JSON:
    """Java sends whole alert objects; only their ids count."""
    q = await queue(request)
    await q.remove_alerts(alert_ids(json_object(await read_json(request)).get("alerts")))
    return JSON({"msg": "Deleted"})


async def remove_alert(request: Request) -> JSON:
    q = await queue(request)
    await read_body(request)  # Python sends an empty body with a JSON content type
    try:
        await q.remove_alert(request.path_params["alert_id"])
    except QueueNotFound:
        raise AlertNotFound() from None
    return JSON({"msg": "Deleted"})


# -- routing -------------------------------------------------------------------------------------


def routes() -> list[BaseRoute]:
    # Starlette tries routes in order (1-2 us each): the message routes come first. Templates that
    # overlap keep their relative order (peek before {message_id}).
    table = [
        ("/queues/{queue}/messages", post_messages, "POST"),
        ("/queues/{queue}/messages", get_messages, "GET"),
        ("/queues/{queue}/messages", delete_messages, "DELETE"),
        ("/queues", list_queues, "GET"),
        ("/queues/{queue}", get_queue, "GET"),
        ("/queues/{queue}", update_queue, "POST"),
        ("/queues/{queue}", delete_queue, "DELETE"),
        ("/queues/{queue}/clear", clear_queue, "POST"),
        ("/queues/{queue}/messages/webhook", post_webhook, "POST"),
        ("/queues/{queue}/messages/peek", peek_messages, "GET"),
        ("/queues/{queue}/messages/{message_id}", get_message, "GET"),
        ("/queues/{queue}/messages/{message_id}", delete_message, "DELETE"),
        ("/queues/{queue}/messages/{message_id}/touch", touch_message, "POST"),
        ("/queues/{queue}/messages/{message_id}/release", release_message, "POST"),
        ("/queues/{queue}/messages/{message_id}/subscribers", message_subscribers, "GET"),
        ("/queues/{queue}/messages/{message_id}/subscribers/{subscriber_id}", acknowledge_push, "DELETE"),
        ("/queues/{queue}/subscribers", add_subscribers, "POST"),
        ("/queues/{queue}/subscribers", remove_subscribers, "DELETE"),
        ("/queues/{queue}/alerts", add_alerts, "POST"),
        ("/queues/{queue}/alerts", replace_alerts, "PUT"),
        ("/queues/{queue}/alerts", remove_alerts, "DELETE"),
        ("/queues/{queue}/alerts/{alert_id}", remove_alert, "DELETE"),
    ]
    return mount("/1/projects/{project_id}", table)
