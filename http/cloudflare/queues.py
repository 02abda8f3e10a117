"""Cloudflare Queues: create, list, get, update, delete a queue, its metrics and its purge."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ferrymq.engine import Backlog
from ferrymq.engine.errors import InvalidArgument
from ferrymq.engine.models import QueueDetails, QueueInfo

from .._common import JSON, engine, query_params
from .consumers import consumer_view, stored_consumer
from .envelope import (
    BAD_BODY, BAD_NAME, BAD_SETTINGS, DELAY, JURISDICTIONS, JURISDICTION_ATTR, LIST_ALL_LIMIT,
    PULL_DEFAULTS, PURGE_ATTR, RETENTION, RETENTION_DEFAULT, account, bad, body_object, now_ms, number,
    ok, page_info, queue_of, seconds, timestamp,
)

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
    params = query_params(request)
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
