"""Cloudflare Queues: event subscriptions, stored as engine subscriptions; our own queues' events
are the only source that fires."""

from __future__ import annotations

import dataclasses
import re
import secrets
from typing import Any

import orjson
from starlette.requests import Request

from ferrymq.engine import QUEUE_EVENTS, QueueNotFound, Subscription
from ferrymq.engine.errors import InvalidArgument

from .._common import JSON, engine, query_params, too_deep
from .envelope import (
    BAD_BODY, NOT_FOUND, account, bad, body_object, now_ms, number, ok, page_info, timestamp,
)

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
    params = query_params(request)
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
