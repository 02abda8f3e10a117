"""IronMQ v1 REST API (pull queues) over the engine. Translation only: parse, one engine call,
shape. The contract, with the quirks real clients depend on: ../shared/notes/ironmq-v1.md.

Every success is 200 with ``Content-Type: application/json`` exactly; errors are ``{"msg": ...}``.
Zeros mean "default"; empty POST bodies and bodies on DELETE are accepted; unknown keys are
ignored. A missing queue reads as empty (v1 "virtual queues").
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route

from ferrymq.engine import DeliveryPaused, Message, NewMessage, QueueInfo, QueueNotFound
from ferrymq.engine.aio import AsyncQueue

from . import errors
from ._common import JSON, auth, bearer, engine, integer, read_body, read_json, unless_disconnected
from .errors import IRONMQ, Problem

PREFIX = "/1/projects/"
MAX_BATCH = 100
TIMEOUT = (1, 86_400)  # message and reservation timeout, seconds (below DOCv1's 30: clients use 2, 10)
DELAY = (0, 604_800)
EXPIRES_IN = (1, 2_592_000)
WAIT = (0, 30)
PER_PAGE = (1, 100)
STATUS = {"ready": "queued", "delayed": "queued", "reserved": "reserved"}


def render_error(problem: Problem) -> JSON:
    return JSON({"msg": problem.text}, status_code=problem.status, headers=problem.headers)


errors.register("/", IRONMQ, render_error)  # IronMQ's envelope also answers unknown paths


# -- requests ------------------------------------------------------------------------------------


async def project(request: Request) -> str:
    """The path's project, if the token (header or ``?oauth=``) belongs to it."""
    token = bearer(request, "oauth", "bearer") or request.query_params.get("oauth")
    owner = await auth(request).project_of(token)
    if owner is None or owner != request.path_params["project_id"]:
        raise Problem(401, "Invalid project/token combination")
    return owner


async def queue(request: Request) -> AsyncQueue:
    return engine(request).queue(await project(request), request.path_params["queue"])


def query_int(request: Request, name: str, bounds: tuple[int, int], default: int) -> int:
    """A query parameter; absent or 0 means the default (iron_go sends zeros on every GET)."""
    raw = request.query_params.get(name, "")
    if raw in ("", "0"):
        return default
    return integer(raw, name, *bounds)


def optional(doc: dict[str, Any], name: str, bounds: tuple[int, int], field: str | None = None) -> int | None:
    """A body field in seconds; absent, null or 0 mean the default (Java sends zero longs)."""
    value = doc.get(name)
    if value is None or value == 0:
        return None
    return integer(value, field or name, *bounds)


def message_view(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "body": message.text,
        "timeout": max(1, math.ceil(message.timeout)),
        "reserved_count": message.reserved_count,
    }


def queue_view(info: QueueInfo) -> dict[str, Any]:
    return {
        "id": info.id[:24],  # IronMQ ids are 24 hex characters; the engine's are 32
        "name": info.name,
        "project_id": info.project,
        "size": info.size,
        "total_messages": info.total_messages,
    }


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
    q = await queue(request)
    await read_json(request)  # validated; push settings arrive with push queues
    return JSON(queue_view(await q.ensure()))


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


async def post_messages(request: Request) -> JSON:
    q = await queue(request)
    doc = await read_json(request)
    if not isinstance(doc, dict):
        raise Problem(400, "Request body must be a JSON object")
    items = doc.get("messages")
    if not items:
        raise Problem(406, "messages is required")
    if not isinstance(items, list):
        raise Problem(400, "messages must be an array")
    if len(items) > MAX_BATCH:
        raise Problem(400, f"messages must hold at most {MAX_BATCH} messages")
    return posted(await q.put([new_message(item, i) for i, item in enumerate(items)]))


def new_message(item: Any, i: int) -> NewMessage:
    if not isinstance(item, dict):
        raise Problem(400, f"messages[{i}] must be an object")
    if "body" not in item or item["body"] is None:
        raise Problem(406, f"messages[{i}].body is required")
    if not isinstance(item["body"], str):
        raise Problem(400, f"messages[{i}].body must be a string")
    return NewMessage(
        item["body"],
        timeout=optional(item, "timeout", TIMEOUT),
        delay=optional(item, "delay", DELAY),
        expires_in=optional(item, "expires_in", EXPIRES_IN),
    )


async def post_webhook(request: Request) -> JSON:
    q = await queue(request)
    return posted(await q.put([await read_body(request)]))


async def get_messages(request: Request) -> JSON:
    q = await queue(request)
    n = query_int(request, "n", (1, MAX_BATCH), 1)
    timeout = query_int(request, "timeout", TIMEOUT, 0) or None
    wait = query_int(request, "wait", WAIT, 0)
    delete = request.query_params.get("delete", "false").lower()
    if delete not in ("true", "false"):
        raise Problem(400, "delete must be true or false")
    try:
        got = await unless_disconnected(
            request, q.reserve(n, timeout=timeout, delete=delete == "true", wait=wait), []
        )
    except DeliveryPaused:
        got = []  # a paused queue delivers nothing
    return JSON({"messages": [message_view(m) for m in got]})


async def peek_messages(request: Request) -> JSON:
    q = await queue(request)
    n = query_int(request, "n", (1, MAX_BATCH), 1)
    return JSON({"messages": [message_view(m) for m in await q.peek(n)]})


async def get_message(request: Request) -> JSON:
    q = await queue(request)
    message = await q.get(request.path_params["message_id"])
    return JSON({**message_view(message), "status": STATUS[message.status]})


async def delete_message(request: Request) -> JSON:
    q = await queue(request)
    await read_body(request)  # Node and PHP send {}
    await q.delete_message(request.path_params["message_id"])
    return JSON({"msg": "Deleted"})


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


# -- routing -------------------------------------------------------------------------------------


def both(path: str, endpoint: Any, method: str) -> list[Route]:
    """The path with and without a trailing slash (DOCv1 writes both; no redirects)."""
    return [Route(path, endpoint, methods=[method]), Route(path + "/", endpoint, methods=[method])]


def routes() -> list[BaseRoute]:
    table = [
        ("/queues", list_queues, "GET"),
        ("/queues/{queue}", get_queue, "GET"),
        ("/queues/{queue}", update_queue, "POST"),
        ("/queues/{queue}", delete_queue, "DELETE"),
        ("/queues/{queue}/clear", clear_queue, "POST"),
        ("/queues/{queue}/messages", post_messages, "POST"),
        ("/queues/{queue}/messages", get_messages, "GET"),
        ("/queues/{queue}/messages", delete_messages, "DELETE"),
        ("/queues/{queue}/messages/webhook", post_webhook, "POST"),
        ("/queues/{queue}/messages/peek", peek_messages, "GET"),
        ("/queues/{queue}/messages/{message_id}", get_message, "GET"),
        ("/queues/{queue}/messages/{message_id}", delete_message, "DELETE"),
        ("/queues/{queue}/messages/{message_id}/touch", touch_message, "POST"),
        ("/queues/{queue}/messages/{message_id}/release", release_message, "POST"),
    ]
    return [Mount("/1/projects/{project_id}", routes=[r for row in table for r in both(*row)])]
